# airshake: the protocol core, sans-I/O, shared by device A (MicroPython) and server B
# (CPython). This file is the public surface; everything else is importable by module.
# Keep it import-light: the device imports submodules on demand to save RAM.

__version__ = "0.1.0"
__all__ = ("Initiator", "Responder", "ResponderConfig", "Session", "DeviceKey",
           "ServerKey", "ServerRef", "load_backend")


def __getattr__(name):
    # lazy re-exports (PEP 562 on CPython; MicroPython imports the submodules directly)
    if name == "Initiator":
        from airshake.initiator import Initiator
        return Initiator
    if name in ("Responder", "ResponderConfig"):
        from airshake import responder
        return getattr(responder, name)
    if name == "Session":
        from airshake.session import Session
        return Session
    if name in ("DeviceKey", "ServerKey", "ServerRef"):
        from airshake import keys
        return getattr(keys, name)
    if name == "load_backend":
        from airshake.crypto import load_backend
        return load_backend
    # MicroPython consults __getattr__ for `from airshake import events` too
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        __import__("airshake." + name)
    except ImportError:
        raise AttributeError(name)
    import sys
    return sys.modules["airshake." + name]
