"""Server B's warm handshake path in one process, without sockets or other load: B's
Dispatcher (the real one, as `airshake server` builds it, with a MemCache already
holding every device's C_A) handed m1 and m3 from core Initiators; only the CPU time of
B's dispatcher.datagram() calls is counted (time.thread_time), so the figure is B's
per-handshake cost free of the machine's noise, of the event loop and of the kernel.
--profile adds a cProfile of those calls, summed per source file (what is B's own code,
what is the core's).

Run: python bench/b_hotpath.py [--handshakes N] [--devices N] [--addresses N] [--profile]
(JSON)
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware", "lib"), ROOT]

from airshake.crypto import load_backend  # noqa: E402
from airshake.initiator import Initiator  # noqa: E402
from airshake.keys import DeviceKey, ServerRef  # noqa: E402
from airshake.responder import ReplayCache, ResponderConfig  # noqa: E402
from host_server.ca import CA  # noqa: E402
from host_server.server_b.backend import load_server_backend, pin_server_keys  # noqa: E402
from host_server.server_b.config import Rate, ServerConfig  # noqa: E402
from host_server.server_b.credentials import Credentials  # noqa: E402
from host_server.server_b.dispatch import Dispatcher  # noqa: E402
from host_server.server_b.keyfiles import load_ca, load_server_keys  # noqa: E402
from host_server.server_b.logs import EventLog  # noqa: E402
from host_server.server_b.metrics import Metrics  # noqa: E402
from host_server.server_b.sink import Sink  # noqa: E402
from host_server.server_b.verify import Verifier  # noqa: E402


class _NoCS:
    """The warm path never asks the CS: any request is a failure of the benchmark."""

    async def get_cert(self, id_hex: str):  # noqa: ANN201
        raise SystemExit("b_hotpath: B asked the CS for %s: the cache was not warm" % id_hex)


class _NullSink(Sink):
    async def on_record(self, id_a, sid, seq, data, kind):  # noqa: ANN001, ANN201
        return None

    async def close(self) -> None:
        return None


def _setup(tmp: Path, devices: int):
    backend = load_backend("pyca")
    ca = CA.init(tmp / "ca", "ed25519", "hotpath CA")
    ca.issue_server(0, "b.hotpath", tmp / "keys")
    cfg = ServerConfig(ca_cert=tmp / "ca" / "ca.crt", key_dir=tmp / "keys", instance="hot",
                       rate_per_source=Rate(10**6, 10**6), rate_per_id=Rate(10**6, 10**6))
    server_backend = load_server_backend((0,))
    keys = load_server_keys(server_backend, cfg)
    pin_server_keys(server_backend, keys)
    rcfg = ResponderConfig(server_backend, keys, id_len=8, window=cfg.window,
                           replay=ReplayCache(cfg.replay_size), accept_early=False)
    metrics = Metrics("hot")
    verifier = Verifier(load_ca(cfg.ca_cert), 8)
    creds = Credentials(cfg, verifier, _NoCS(), metrics)  # type: ignore[arg-type]  # duck-typed CS
    out: list = []
    d = Dispatcher(rcfg, creds, _NullSink(), metrics, EventLog("hot", "warning"),
                   lambda m, a: out.append(m), clock=time.time)
    from cryptography.hazmat.primitives.asymmetric import x25519
    devs = []
    now = time.time()
    for _ in range(devices):
        key = DeviceKey.generate(backend, 0)
        der = ca.issue_device(x25519.X25519PublicKey.from_public_bytes(key.public), "dev")
        checked = verifier.verify(der, key.id_a, now)
        creds.mem.put(key.id_a, checked.cert, checked.not_after, now)
        devs.append(key)
    ref = ServerRef(backend, 0, (tmp / "keys" / "server-suite0.der").read_bytes())
    return backend, d, out, devs, ref, ca.cert_der


def run(handshakes: int, devices: int, profile: bool, addresses: int = 32) -> dict:
    with tempfile.TemporaryDirectory(prefix="b-hotpath-") as tmp:
        backend, d, out, devs, ref, anchor = _setup(Path(tmp), devices)
        prof = cProfile.Profile(time.thread_time) if profile else None
        b_cpu = 0.0

        async def go() -> None:
            nonlocal b_cpu
            for i in range(handshakes):
                key = devs[i % len(devs)]
                addr = ("10.0.%d.%d" % (i % addresses >> 8 & 255, i % addresses & 255),
                        40000 + i % addresses)
                ini = Initiator(backend, [key], anchor, server=ref, server_name=ref.subject)
                now = time.time()
                ini.connect(now, b"")
                for _ in range(2):                       # m1, then m3
                    msg = ini.datagrams_to_send(now)[0]
                    del out[:]
                    t0 = time.thread_time()
                    if prof:
                        prof.enable()
                    d.datagram(msg, addr)
                    if prof:
                        prof.disable()
                    b_cpu += time.thread_time() - t0
                    for m in out:
                        ini.receive(m, now)
                if not ini.session:
                    raise SystemExit("b_hotpath: handshake %d did not complete" % i)
        asyncio.run(go())
        result = {"handshakes": handshakes, "devices": devices, "addresses": addresses,
                  "b_cpu_us_per_handshake": round(b_cpu / handshakes * 1e6, 1),
                  "b_handshakes_per_cpu_s": round(handshakes / b_cpu),
                  "sessions": d.sessions.count}
        if prof:
            by: collections.Counter[str] = collections.Counter()
            table = pstats.Stats(prof).stats  # type: ignore[attr-defined]  # no stub for it
            for (f, _line, _fn), (_cc, _nc, tt, _ct, _callers) in table.items():
                by[f.split(ROOT + "/")[-1] if ROOT in f else
                   ("site-packages/" + f.split("site-packages/")[-1].split("/")[0]
                    if "site-packages" in f else os.path.basename(f) or f)] += tt
            total = sum(by.values())
            result["profile_share_by_file"] = {k: round(v / total, 3)
                                               for k, v in by.most_common(25)}
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--handshakes", type=int, default=5000)
    ap.add_argument("--devices", type=int, default=256)
    ap.add_argument("--addresses", type=int, default=32,
                    help="source addresses the handshakes come from in turn (bench.server's "
                         "load: one per client slot, 32)")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    print(json.dumps(run(args.handshakes, args.devices, args.profile, args.addresses),
                     indent=1))


if __name__ == "__main__":
    main()
