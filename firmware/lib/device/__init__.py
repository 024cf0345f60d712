# device: the application firmware of device A (wake cycle, key store, clock, session
# store, sensor, link). The protocol itself is airshake/; radios are radios/.
#
# Import order matters on the device: the data directory `airshake/` sits in the
# current directory, '' (the current directory) comes first on MicroPython's sys.path,
# and there a plain directory counts as a namespace package: `import airshake` would
# find the data directory instead of lib/airshake (or the frozen core). Importing
# `device` first moves '' to the end of sys.path, so lib/ and .frozen win and board.py
# (only in the current directory) is still found.
import sys


def _cwd_last():
    path = sys.path
    moved = [p for p in path if p in ("", ".")]
    for entry in moved:
        path.remove(entry)
    path.extend(moved)
    mod = sys.modules.get("airshake")
    if mod is not None and not hasattr(mod, "__version__"):
        del sys.modules["airshake"]    # the data directory had been imported as a package


_cwd_last()
