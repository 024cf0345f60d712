# bench.server: server B's handshakes per second per core against CPython ssl doing TLS
# 1.3 with mutual authentication, in the same run.
#   warm   B (subprocess, real CS) after every device has handshaken once, so each
#          handshake finds C_A in B's cache; the metrics prove it (no CS request in
#          the window, a MEM hit per handshake)
#   cold   B with --cache-size 0: every handshake fetches C_A from the CS over HTTP and
#          verifies it (the metrics prove it: a CS request per handshake, no MEM hit);
#          the CS's own CPU is recorded apart
#   tls13  host_server/competitors tls13.loopback_run: real TCP on 127.0.0.1, the server in its own
#          process pinned to one CPU, handshakes per CPU-second of that process; minimal
#          (Ed25519) and typical (RSA-2048) certificates
# Per core = completed handshakes / CPU-seconds of the server process in the window, the
# median over the windows (5 x 5 s), with the spread (min, max) of the windows beside it.
# ratio = airshake warm / TLS 1.3 minimal (the faster TLS), measured in the same run.
# loadgen_reference: one run of host_server.server_b.loadgen itself, as a cross-check.
#   python -m bench.server [--only warm,cold,tls] [--windows 5] [--seconds 5]  (JSON)
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.bload import Stack, load, prime
from bench.common import BenchFailure, check, median, r
from host_server.competitors import edhoc, tls13
from host_server.server_b import loadgen


def _airshake(stack: Stack, name: str, flags: list[str], warm: bool, windows: int,
              seconds: float) -> dict[str, Any]:
    b = stack.start_b(name, *flags)
    try:
        primed = prime(stack, b, stack.keys) if warm else None
        runs, latency = load(stack, b, stack.keys, windows, seconds)
    finally:
        b.stop()
    for w in runs:
        check(w["b_not_ok"] == 0, "%s: B refused or failed %d handshakes" % (name, w["b_not_ok"]))
        # B counts a handshake at m3, the client at B's first record, and the metrics
        # scrape is not instantaneous: the window edges blur by a few dozen handshakes
        check(abs(w["b_completed"] - w["confirmed"]) <= 0.1 * w["confirmed"] + 64,
              "%s: B completed %d, clients confirmed %d" % (name, w["b_completed"],
                                                            w["confirmed"]))
        if warm:
            check(w["cs_requests"] == 0 and w["mem_hits"] >= 0.9 * w["confirmed"] - 64,
                  "%s: the cache was not warm (%d CS requests, %d MEM hits)"
                  % (name, w["cs_requests"], w["mem_hits"]))
        else:
            check(w["mem_hits"] == 0 and w["cs_ok"] >= 0.9 * w["confirmed"] - 64,
                  "%s: handshakes did not go to the CS (%d CS lookups for %d handshakes)"
                  % (name, w["cs_ok"], w["confirmed"]))
    out: dict[str, Any] = {
        "completed": True, "devices": len(stack.keys), "flags": flags, "windows": runs,
        "hs_per_b_cpu_s": r(median(w["hs_per_b_cpu_s"] for w in runs)),
        "spread_hs_per_b_cpu_s": spread(w["hs_per_b_cpu_s"] for w in runs),
        "hs_per_s": r(median(w["hs_per_s"] for w in runs)), **latency,
        "check": "every handshake confirmed by B's first record (same session keys); "
                 "B's metrics: completed on B's side, %s" % (
                     "no CS request and a MEM hit per handshake" if warm else
                     "a CS lookup per handshake and no MEM hit"),
    }
    if primed:
        out["prime"] = primed
    if not warm:
        cpu = sum(w["b_cpu_s"] + w["cs_cpu_s"] for w in runs)
        out["hs_per_b_plus_cs_cpu_s"] = r(sum(w["confirmed"] for w in runs) / cpu)
    return out


def _tls(profile: str, windows: int, seconds: float) -> dict[str, Any]:
    try:
        runs = [tls13.loopback_run(seconds, profile) for _ in range(windows)]
    except Exception as e:  # loopback_run raises on any failed handshake
        raise BenchFailure("TLS 1.3 %s loopback: %s: %s" % (profile, type(e).__name__, e))
    return {
        "completed": True, "certs": profile,
        "windows": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items()}
                    for x in runs],
        "hs_per_server_cpu_s": r(median(x["per_server_cpu_second"] for x in runs)),
        "spread_hs_per_server_cpu_s": spread(x["per_server_cpu_second"] for x in runs),
        "hs_per_s": r(median(x["per_wall_second"] for x in runs)),
        "check": "CERT_REQUIRED both ways; the server counts a handshake after its 1-byte "
                 "reply, the client checks it; no server error",
    }


def _loadgen(quick: bool) -> dict[str, Any]:
    args = argparse.Namespace(devices=20 if quick else 200, workers=1, concurrency=32,
                              duration=1.0 if quick else 5.0, warmup=1.0 if quick else 3.0,
                              suite=0, data="", log_level="warning", b_arg=[], keep=False)
    try:
        out = loadgen.run(args)
    except SystemExit as e:
        raise BenchFailure("loadgen: %s" % e)
    check(out["completed"] > 0 and out["failed"] == 0,
          "loadgen: %d completed, %d failed" % (out["completed"], out["failed"]))
    out["completed_ok"] = True
    return out


def spread(values: Any) -> list[float]:
    """[min, max] of the windows' rates."""
    v = list(values)
    return [r(min(v)), r(max(v))]


def measure(quick: bool, windows: int = 5, seconds: float = 5.0,
            only: tuple[str, ...] = ("warm", "cold", "s2", "tls", "edhoc", "loadgen")
            ) -> dict[str, Any]:
    if quick:
        windows, seconds = 1, 1.0
    # a multiple of the 32 slots: each device belongs to one slot, so no two handshakes
    # of one device overlap (B would share one CS request between them)
    devices = 64 if quick else 256
    out: dict[str, Any] = {}
    with Stack(0) as stack:
        stack.enroll(devices)
        if "warm" in only:
            out["airshake_warm"] = _airshake(stack, "warm", [], True, windows, seconds)
        if "cold" in only:
            out["airshake_cold"] = _airshake(stack, "cold", ["--cache-size", "0"], False,
                                             windows, seconds)
    if not quick and "s2" in only:
        with Stack(2) as stack:
            stack.enroll(devices)
            out["airshake_s2_warm"] = _airshake(stack, "warm-s2", [], True, windows, seconds)
    if "tls" in only:
        out["tls13_minimal"] = _tls("minimal", windows, seconds)
        out["tls13_typical"] = _tls("typical", windows, seconds)
    if "edhoc" in only:
        out["edhoc_responder_in_memory_hs_per_cpu_s"] = r(
            edhoc.edhoc_handshakes_per_second(seconds, side="responder"))
    if "loadgen" in only:
        out["loadgen_reference"] = _loadgen(quick)
    if not {"warm", "cold", "tls"} <= set(only):
        return out              # a partial run (the command line): no ratios
    out["airshake_hs_per_s"] = out["airshake_warm"]["hs_per_b_cpu_s"]
    out["airshake_cold_hs_per_s"] = out["airshake_cold"]["hs_per_b_cpu_s"]
    out["tls13_hs_per_s"] = out["tls13_minimal"]["hs_per_server_cpu_s"]
    out["tls13_typical_hs_per_s"] = out["tls13_typical"]["hs_per_server_cpu_s"]
    out["ratio"] = round(out["airshake_hs_per_s"] / out["tls13_hs_per_s"], 2)
    out["ratio_cold"] = round(out["airshake_cold_hs_per_s"] / out["tls13_hs_per_s"], 2)
    out["ratio_vs_typical"] = round(out["airshake_hs_per_s"] / out["tls13_typical_hs_per_s"], 2)
    out["units"] = "handshakes per CPU-second of the server process (= per core)"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.server",
                                description="B against TLS 1.3 per core; prints JSON")
    p.add_argument("--only", default="warm,cold,tls",
                   help="comma-separated: warm, cold, s2, tls, edhoc, loadgen")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args(argv)
    out = measure(False, args.windows, args.seconds, tuple(args.only.split(",")))
    for key in ("airshake_warm", "airshake_cold", "tls13_minimal"):
        if key in out:
            x = out[key]
            rate = x.get("hs_per_b_cpu_s", x.get("hs_per_server_cpu_s"))
            sp = x.get("spread_hs_per_b_cpu_s", x.get("spread_hs_per_server_cpu_s"))
            print("%s: %.0f per CPU-s (windows %s)" % (key, rate, sp), file=sys.stderr)
    if "ratio" in out:
        print("ratio warm %.2f, cold %.2f" % (out["ratio"], out["ratio_cold"]), file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
