# airshake.const: the one `const` shim of the core. MicroPython's compiler folds
# `_NAME = const(value)` wherever the name `const` is bound; CPython gets the identity.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x
