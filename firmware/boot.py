# boot.py: runs first on every reset and deep-sleep wake. Keeps boot minimal (no
# network: radios bring up what they need) and quiets the ESP-IDF log so the serial
# console carries only the firmware's "airshake:" lines.
try:
    import esp
    esp.osdebug(None)
except (ImportError, AttributeError):
    pass
import gc

gc.collect()
