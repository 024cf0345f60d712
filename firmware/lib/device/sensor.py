# device.sensor: owns the application reading sent on each wake: a short ASCII payload.
# ESP32: the die temperature (esp32.mcu_temperature() on the S3, raw_temperature() in
# Fahrenheit on the original ESP32); unix, or no sensor: a counter persisted in
# state.json. Every reading carries the counter n, so B can tell repeats apart.


def read(state, board=None):
    n = state.get("counter", 0) + 1
    state["counter"] = n
    value = None
    try:
        import esp32
        if hasattr(esp32, "mcu_temperature"):
            value = "t=%d" % esp32.mcu_temperature()
        elif hasattr(esp32, "raw_temperature"):
            value = "t=%d" % ((esp32.raw_temperature() - 32) * 5 // 9)
    except (ImportError, OSError):
        pass
    if value is None:
        return ("n=%d" % n).encode()
    return ("n=%d %s" % (n, value)).encode()
