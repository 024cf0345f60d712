"""Server B's memory per handshake state, measured with tracemalloc on CPython.

  completed_handshake  a completed Responder as B keeps it for m3 retransmissions (up
                       to DONE_LINGER seconds, at most max_handshakes of them), with
                       its session and its replay-cache entry; suite 0, pyca, one shared
                       ResponderConfig, N in-process handshakes
  session              a session as B's SessionTable holds it once B's first record is out
                       (the table keeps the last HOT_LIMIT live and freezes the others
                       into bytes): whatever the table retains per session, with its
                       entry, over --sessions sessions (its four secret byte strings are
                       made beforehand and not counted)
  rss                  the same table grown to --rss-sessions sessions in a fresh process:
                       VmRSS growth per session (the scaling row at 10^6 sessions)

Run: python bench/server_memory.py [--n N] [--sessions N] [--rss-sessions N]  (JSON)
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware", "lib"), ROOT]   # run as a script: testkit/

from airshake.crypto import load_backend  # noqa: E402
from airshake.session import ROLE_RESPONDER, Session  # noqa: E402
from testkit.hs_support import Pair, config  # noqa: E402
from host_server.server_b.backend import load_server_backend  # noqa: E402
from host_server.server_b.tables import Conn, SessionTable  # noqa: E402


def _per_item(make, n: int) -> int:
    kept = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        kept.append(make())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return round((after - before) / n)


def completed_handshake(n: int) -> int:
    backend = load_backend("pyca")
    cfg = config(backend, (0,))

    def one():
        pair = Pair(backend, 0, cfg=cfg)
        pair.run(b"x")
        pair.res.datagrams_to_send(pair.t)
        if pair.res.session is None:
            raise SystemExit("bench/server_memory.py: a handshake did not complete")
        return pair.res
    one()                                   # imports and first-use caches
    return _per_item(one, n)


def _session_maker(n: int):
    """(table, one): one() adds a session as B's delivery does (add, first record sealed,
    release), from secrets made beforehand; each from its own address."""
    backend = load_server_backend((0,))
    table = SessionTable(n)
    secrets = iter([(os.urandom(4), os.urandom(32), os.urandom(32), os.urandom(8), i)
                    for i in range(n)])

    def one():
        sid, send, recv, id_a, i = next(secrets)
        conn = Conn(Session(backend, ROLE_RESPONDER, 0, sid, send, recv, time.time()), id_a,
                    ("10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255), 40000 + i % 20000),
                    time.time())
        table.add(conn)
        conn.session.seal(b"")            # B's first record
        table.release(conn)
        return None
    return table, one


def session(n: int) -> int:
    table, one = _session_maker(n)
    per = _per_item(one, n)
    if len(table) != n:
        raise SystemExit("bench/server_memory.py: the table holds %d of %d sessions"
                         % (len(table), n))
    return per


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_per_session(n: int) -> dict:
    """VmRSS growth per session over n sessions held (the table made first, empty)."""
    table, one = _session_maker(n)
    gc.collect()
    before = _rss()
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    gc.collect()
    grown = _rss() - before
    return {"sessions": len(table), "rss_growth_bytes": grown,
            "rss_bytes_per_session": round(grown / n), "seconds": round(time.perf_counter()
                                                                       - t0, 1),
            "projected_1e6_mib": round(grown / n * 10**6 / 2**20)}


def main() -> None:
    ap = argparse.ArgumentParser(description="B's memory per completed handshake and per "
                                 "session (tracemalloc)")
    ap.add_argument("--n", type=int, default=400,
                    help="completed handshakes measured (default 400)")
    ap.add_argument("--sessions", type=int, default=20000,
                    help="sessions measured with tracemalloc (default 20000)")
    ap.add_argument("--rss-sessions", type=int, default=0,
                    help="also grow a table to N sessions and report VmRSS per session "
                    "(1000000 for the scaling row; takes a minute)")
    args = ap.parse_args()
    out = {"completed_handshake_bytes": completed_handshake(args.n),
           "session_bytes": session(args.sessions), "n": args.n, "sessions": args.sessions}
    if args.rss_sessions:
        out["rss"] = rss_per_session(args.rss_sessions)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
