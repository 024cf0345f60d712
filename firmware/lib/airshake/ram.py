# airshake.ram: a device's RAM. release() lets modules go once a device is done with them
# (the certificate parser once C_B is held, the C509 decoder once C_B is DER again): a
# frozen module's globals, classes and functions live in RAM even though its code is in
# flash. A later import loads the module again.


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
