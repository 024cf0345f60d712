# main.py: the device's entry point (runs after boot.py on every reset and deep-sleep
# wake): puts lib/ on the path and hands over to device.wakes, which runs a wake cycle and
# sleeps. Last resort: whatever escapes is logged and the device still sleeps, so a bug
# can never become a crash loop without sleep.
# Unix port: micropython main.py [--cycles N] [--interval S]
import sys

if "lib" not in sys.path and "/lib" not in sys.path:
    sys.path.insert(0, "lib")
# the code's locations (lib/, frozen modules) before the current directory: a stray
# folder in the device root (an earlier firmware's airshake/) must never shadow them;
# board.py and the data files are still found in the current directory. The current
# directory is "" on an ESP32, the script's absolute folder on the unix port.
try:
    import os
    _here = os.getcwd()
except (ImportError, AttributeError):
    _here = ""
for _entry in ("", ".", _here):
    if _entry in sys.path:
        sys.path.remove(_entry)
        sys.path.append(_entry)

try:
    from airshake import ram
    ram.loading()      # compact loading (airshake.ram); device.app turns it off for crypto
    from device import wakes
    wakes.main()
except Exception as e:
    print("airshake: error", "%s: %s" % (type(e).__name__, e))
    try:
        import machine
        machine.deepsleep(60000)
    except (ImportError, AttributeError):
        pass
