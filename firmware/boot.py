# boot.py: runs first on every reset and deep-sleep wake. Its first act turns Ctrl-C off,
# so nothing can interrupt the firmware on its way to main.py (device.lock turns it back
# on unless the device is locked: then no REPL ever comes, device.lock says why). Keeps
# boot minimal (no network: radios bring up what they need) and quiets the ESP-IDF log
# so the serial console carries only the firmware's "airshake:" lines.
try:
    import micropython
    micropython.kbd_intr(-1)
except (ImportError, AttributeError):
    pass
try:
    import esp
    esp.osdebug(None)
except (ImportError, AttributeError):
    pass
import gc

gc.collect()
