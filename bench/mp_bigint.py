# bench/mp_bigint.py (MicroPython): time of one public-key operation of the pure backend
# (the big-integer work of a handshake) on this runtime. Prints one JSON line
# {op: microseconds}, the median of N runs per op.
# Usage: micropython bench/mp_bigint.py [N]   (from the project root)
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.getenv("AIRSHAKE_LIB") or "firmware/lib")
from airshake import suites  # noqa: E402
from airshake.crypto import load_backend, primitives_for  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 9


def timed(fn):
    fn()
    out = []
    for _ in range(N):
        gc.collect()  # as before a handshake: no collection of earlier garbage timed
        t = time.ticks_us()
        fn()
        out.append(time.ticks_diff(time.ticks_us(), t))
    out.sort()
    return out[len(out) // 2]


b = load_backend("pure", primitives_for((0, 2)))
x_priv = suites.new_scalar(b, "x25519")
x_peer = b.x25519_public(suites.new_scalar(b, "x25519"))
p_priv = suites.new_scalar(b, "p256")
p_peer = b.p256_public(suites.new_scalar(b, "p256"))
print(json.dumps({
    "x25519_public": timed(lambda: b.x25519_public(x_priv)),
    "x25519": timed(lambda: b.x25519(x_priv, x_peer)),
    "p256_public": timed(lambda: b.p256_public(p_priv)),
    "p256_ecdh": timed(lambda: b.p256_ecdh(p_priv, p_peer)),
}))
