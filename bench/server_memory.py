"""Server B's memory per handshake state, measured with tracemalloc on CPython.

  completed_handshake  a completed Responder as B keeps it for m3 retransmissions (up
                       to DONE_LINGER seconds, at most max_handshakes of them), with
                       its session and its replay-cache entry; suite 0, pyca, one shared
                       ResponderConfig, N in-process handshakes
  session              a session as B's SessionTable holds it: the core Session, its
                       Conn and its table entry (its four secret byte strings are made
                       beforehand and not counted)

Run: python bench/server_memory.py [--n N]   (prints JSON; not part of make bench)
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


def session(n: int) -> int:
    backend = load_server_backend((0,))
    table = SessionTable(n)
    secrets = iter([(os.urandom(8), os.urandom(32), os.urandom(32), os.urandom(8))
                    for _ in range(n)])

    def one():
        sid, send, recv, id_a = next(secrets)
        conn = Conn(Session(backend, ROLE_RESPONDER, 0, sid, send, recv, time.time()), id_a,
                    ("127.0.0.1", 40000), time.time())
        table.add(conn)
        return None
    return _per_item(one, n)


def main() -> None:
    ap = argparse.ArgumentParser(description="B's memory per completed handshake and per "
                                 "session (tracemalloc)")
    ap.add_argument("--n", type=int, default=400, help="items measured (default 400)")
    args = ap.parse_args()
    print(json.dumps({"completed_handshake_bytes": completed_handshake(args.n),
                      "session_bytes": session(max(args.n, 1000)), "n": args.n}))


if __name__ == "__main__":
    main()
