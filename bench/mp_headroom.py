# bench/mp_headroom.py (MicroPython): the heap a handshake needs on top of everything a
# booted device already holds. Runs testkit/handshake_client.py unchanged, but
# just before its Initiator is created (after imports, self-tests, keys and gc.collect())
# fills the whole free heap with floats (one GC block each, so every hole the
# boot left is filled too), then lets go of the last ones allocated, which lie at the
# top of the heap: HEADROOM bytes, contiguous, are all the handshake and one record
# exchange get. bench/device.py finds the smallest HEADROOM that passes.
# Prints one JSON line on stderr: resident = bytes held at that point (code loaded into
# RAM, keys, tables), free = free bytes before the fill, left = free bytes after it.
# Both this file and handshake_client.py are compiled to .mpy into the AIRSHAKE_LIB
# tree first (as the core is), so that no source is compiled at run time.
# Usage: MICROPYPATH=LIB AIRSHAKE_LIB=LIB micropython -m mp_headroom HEADROOM PORT CONFIG
#        (from the project root)
import gc
import os
import sys

sys.path.insert(0, os.getenv("AIRSHAKE_LIB") or "firmware/lib")
HEADROOM = int(sys.argv.pop(1))
SLOTS = 256
_ballast = []
_probe = None

import airshake.initiator as _mod  # noqa: E402

_Base = _mod.Initiator


def _block_bytes():
    """Bytes of one GC block (16 on a 32-bit port, 32 on 64-bit): what a float takes."""
    global _probe
    gc.collect()
    before = gc.mem_free()
    _probe = 0.5 + before
    size = before - gc.mem_free()
    _probe = None
    return size


def _fill(block):
    """Take every free block with a float; returns the free bytes before."""
    gc.collect()
    free = gc.mem_free()
    for _ in range(free // (block * SLOTS) + 2):  # room for every reference, made first
        _ballast.append([None] * SLOTS)
    k = 0.5
    try:
        for slots in _ballast:
            for i in range(SLOTS):
                k += 1.0
                slots[i] = k  # a new boxed float: one GC block
    except MemoryError:
        pass
    return free


class _Ballasted(_Base):
    def __init__(self, *args, **kwargs):
        block = _block_bytes()
        gc.collect()
        resident = gc.mem_alloc()
        free = _fill(block)
        # let go of the newest floats (the top of the heap) until HEADROOM is free
        released = 0
        for slots in reversed(_ballast):
            for i in range(SLOTS - 1, -1, -1):
                if slots[i] is not None and released < HEADROOM:
                    slots[i] = None
                    released += block
        gc.collect()
        sys.stderr.write('{"resident": %d, "free": %d, "left": %d, "block": %d}\n'
                         % (resident, free, gc.mem_free(), block))
        _Base.__init__(self, *args, **kwargs)


_mod.Initiator = _Ballasted
import handshake_client  # noqa: E402,F401  (runs the device's handshake)
