# airshake.ram: a device's RAM. release() lets modules go once a device is done with them
# (the certificate parser once C_B is held, the C509 decoder once C_B is DER again): a
# frozen module's globals, classes and functions live in RAM even though its code is in
# flash. A later import loads the module again.
# loading() / loaded(): while a device loads its code (a wake's imports, self-tests, keys)
# the garbage collector runs every LOAD_THRESHOLD bytes allocated, so a loader's garbage is
# gone before the next module is placed and the code and tables that stay pack together,
# instead of leaving holes too small for the handshake's big integers and hash contexts
# (on the 32-bit twin, the smallest heap of a suite-0 wake: firmware as .mpy 65.8 -> 60.5
# KB, frozen 30.4 -> 29.5 KB). loaded() turns it off before the handshake's crypto, where a
# collection every few KB of a scalar multiplication's temporaries would cost CPU.

LOAD_THRESHOLD = 4096


def release(*names):
    """Drop the named modules from sys.modules and from their package, then collect. For
    modules nothing else holds (no object of theirs kept): airshake.keys keeps no x509
    object, so a device that holds C_B by reference can release "airshake.x509",
    "airshake.der"."""
    import sys
    for name in names:
        sys.modules.pop(name, None)
        pkg, _, leaf = name.rpartition(".")
        parent = sys.modules.get(pkg)
        if parent is not None:
            parent.__dict__.pop(leaf, None)
    import gc
    gc.collect()


def loading():
    """From now on collect every LOAD_THRESHOLD bytes allocated (MicroPython)."""
    _threshold(LOAD_THRESHOLD)


def loaded():
    """Back to collecting only when an allocation finds no room (MicroPython's default)."""
    _threshold(-1)


def _threshold(n):
    import gc
    if hasattr(gc, "threshold"):     # MicroPython's; CPython's collector is another scheme
        gc.threshold(n)
