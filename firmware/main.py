# main.py: the device's entry point (runs after boot.py on every reset and deep-sleep
# wake): puts lib/ on the path and hands over to device.app, which runs a wake cycle and
# sleeps. Last resort: whatever escapes is logged and the device still sleeps, so a bug
# can never become a crash loop without sleep.
# Unix port: micropython main.py [--cycles N] [--interval S]
import sys

if "lib" not in sys.path and "/lib" not in sys.path:
    sys.path.insert(0, "lib")

try:
    from device import app
    app.main()
except Exception as e:
    print("airshake: error", "%s: %s" % (type(e).__name__, e))
    try:
        import machine
        machine.deepsleep(60000)
    except (ImportError, AttributeError):
        pass
