# bench.scaling: server B's throughput and memory as the number of enrolled devices
# grows (1, 100, 1,000, 10,000; --quick: 1, 10, 50). One CS; before each size the CS is
# topped up to N devices (concurrent POST /enroll), then a fresh B: every device
# handshakes once (first contact: a CS lookup each; measured), then 32 concurrent
# handshakes walk all N devices for 3 windows (warm cache, checked by B's metrics); the
# throughput is the median of the windows.
# Memory is B's VmRSS (/proc/PID/status) when idle, after the first contacts (N cached
# certificates, N sessions) and at the end of the last window (plus the sessions of the
# windows: B keeps up to max_sessions = 100,000), and VmHWM.
# held_sessions: B's SessionTable grown to 10^6 sessions (--quick: 20,000) in a fresh
# process (bench/server_memory.py --rss-sessions): VmRSS per held session, with its entry.
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import ROOT, BenchFailure

from bench.bload import Stack, load, prime
from bench.common import check, median, r

SIZES = (1, 100, 1000, 10000)
HELD_SESSIONS, QUICK_HELD_SESSIONS = 10**6, 20000
QUICK_SIZES = (1, 10, 50)
CONCURRENCY = 32


def held_sessions(n: int) -> dict[str, Any]:
    """VmRSS growth of a fresh process whose SessionTable holds n sessions."""
    run = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "server_memory.py"),
                          "--n", "20", "--sessions", "20000", "--rss-sessions", str(n)],
                         capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if run.returncode != 0:
        raise BenchFailure("held sessions: %s" % (run.stderr.strip().splitlines() or
                                                  ["exit %d" % run.returncode])[-1])
    out = json.loads(run.stdout)["rss"]
    out["session_bytes_tracemalloc"] = json.loads(run.stdout)["session_bytes"]
    out["completed"] = out["sessions"] == n
    return out


def measure(quick: bool) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else SIZES
    windows, seconds = (1, 1.0) if quick else (3, 4.0)
    rows: list[dict[str, Any]] = []
    with Stack(0) as stack:
        for n in sizes:
            enrolled = stack.enroll(n, concurrency=16)
            keys = stack.keys[:n]
            b = stack.start_b("scale%d" % n)
            try:
                idle = b.memory()
                first = prime(stack, b, keys, concurrency=CONCURRENCY)
                check(first["cs_ok"] == n, "scaling %d: %d CS lookups for %d first contacts"
                      % (n, first["cs_ok"], n))
                runs, latency = load(stack, b, keys, windows, seconds,
                                     concurrency=CONCURRENCY)
            finally:
                b.stop()
            for w in runs:
                check(w["cs_requests"] == 0 and w["b_not_ok"] == 0,
                      "scaling %d: %d CS requests, %d refused in a warm window"
                      % (n, w["cs_requests"], w["b_not_ok"]))
            w = runs[-1]
            rows.append({
                "devices": n, "completed": True, "concurrency": CONCURRENCY,
                "enroll": enrolled, "first_contact": first, "windows": runs, **latency,
                "hs_per_b_cpu_s": r(median(x["hs_per_b_cpu_s"] for x in runs)),
                "hs_per_s": r(median(x["hs_per_s"] for x in runs)),
                "rss_idle_bytes": idle["rss_bytes"],
                "rss_after_first_contact_bytes": first["rss_bytes"],
                "rss_end_bytes": w["rss_bytes"], "hwm_bytes": w["hwm_bytes"],
                "sessions_end": w["sessions"],
            })
    lo, hi = rows[0], rows[-1]
    big, small = rows[-1], rows[-2]
    per_device = ((big["rss_after_first_contact_bytes"] - small["rss_after_first_contact_bytes"])
                  / (big["devices"] - small["devices"]))
    window_sessions = hi["sessions_end"] - hi["first_contact"]["sessions"]
    per_session = ((hi["rss_end_bytes"] - hi["rss_after_first_contact_bytes"])
                   / window_sessions if window_sessions > 0 else None)
    return {
        "rows": rows,
        "held_sessions": held_sessions(QUICK_HELD_SESSIONS if quick else HELD_SESSIONS),
        "growth": {
            "throughput_ratio_largest_to_1": round(hi["hs_per_b_cpu_s"] / lo["hs_per_b_cpu_s"], 2),
            "rss_bytes_per_device": round(per_device),
            "rss_bytes_per_session": round(per_session) if per_session else None,
            "note": "rss_bytes_per_device: (RSS after first contact) difference between the "
                    "two largest sizes over the device difference: a cached C_A, a session, "
                    "replay and handshake-table entries per device. rss_bytes_per_session: "
                    "RSS growth over the largest size's window per session added in it "
                    "(B keeps sessions until max_sessions, LRU).",
        },
    }
