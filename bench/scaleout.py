"""Scale-out benchmark: `python -m bench.scaleout [--seconds S] [--out FILE]` (project root).

1. Handshakes per second through `airshake server --workers N` for N = 1, 2, 4 on one
   UDP port, with the certificate store and the records in PostgreSQL and the shared
   state in Redis (both real servers on loopback, started here in temporary
   directories). Every device's certificate is cached (warm), each m3 carries 16 bytes
   that go to PostgreSQL. Beside each: CPU seconds of B (all workers), PostgreSQL (all
   backends), Redis and the load generator, from /proc/<pid>/stat.
2. The cost of a cold lookup (a device B has not cached): store.get() alone, and the
   lookup as B sees it (airshake_cs_lookup_seconds, cache_size 0 so every handshake
   looks up), for SQLite (the baseline), PostgreSQL and an LDAP directory (slapd), and
   for the CS over HTTP on SQLite (the default deployment).
Prints one JSON object. Needs Debian's postgresql, redis-server and slapd."""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

from testkit import servers  # noqa: E402  (starts the store servers)
from airshake.crypto import load_backend  # noqa: E402
from airshake.keys import DeviceKey  # noqa: E402
from host_server.server_b import loadgen  # noqa: E402
from host_server.ca import CA, identifier, spki_der  # noqa: E402
from host_server.cert_store.backends import open_store  # noqa: E402
from host_server.cert_store.store import CertRecord  # noqa: E402

AIRSHAKE = str(Path(sys.executable).with_name("airshake"))
BACKEND = load_backend("pyca")


def _records(ca: CA, keys: list[DeviceKey]) -> list[CertRecord]:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import x25519
    out = []
    for k in keys:
        pub = x25519.X25519PublicKey.from_public_bytes(k.public)
        der = ca.issue_device(pub, "bench", 8, 365)
        cert = x509.load_der_x509_certificate(der)
        out.append(CertRecord(identifier(spki_der(pub), 8), "bench", der,
                              int(cert.not_valid_after_utc.timestamp()), cert.serial_number,
                              int(time.time())))
    return out


async def _enroll(url: str, recs: list[CertRecord]) -> None:
    store = open_store(url)
    await store.connect()
    for r in recs:
        await store.enroll(r)
    await store.close()


def _ldap_load(slapd: servers.Slapd, recs: list[CertRecord], ca: CA) -> str:
    base = "ou=bench," + slapd.suffix
    ldif = ["dn: %s\nobjectClass: organizationalUnit\nou: bench\n" % base,
            "dn: cn=bench CA,%s\nobjectClass: cRLDistributionPoint\nobjectClass: pkiCA\n"
            "cn: bench CA\n%s" % (base, servers.b64ldif("certificateRevocationList;binary",
                                                         ca.crl([])))]
    for r in recs:
        ldif.append("dn: cn=%s,%s\nobjectClass: device\nobjectClass: pkiUser\ncn: %s\n%s"
                    % (r.id.hex(), base, r.id.hex(),
                       servers.b64ldif("userCertificate;binary", r.der)))
    slapd.add("\n".join(ldif))
    return "ldap://127.0.0.1:%d/%s" % (slapd.port, base)


class B:
    """`airshake server` (optionally --workers N) as a subprocess."""

    def __init__(self, tmp: Path, name: str, *flags: str) -> None:
        self.log = tmp / (name + ".log")
        self.metrics_port = servers.free_port()
        self.proc = subprocess.Popen(
            [AIRSHAKE, "server", "--ca-cert", str(tmp / "ca" / "ca.crt"), "--key-dir",
             str(tmp / "keys"), "--port", "0", "--metrics-port", str(self.metrics_port),
             "--rate-per-source", "1000000:1000000", "--rate-per-id", "1000000:1000000",
             "--log-level", "warning", "--instance", name, "--db", str(tmp / (name + ".db")),
             *flags],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.port, self.pids = self._ready()

    def _ready(self) -> tuple[int, list[int]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = []
            for line in self.log.read_text().splitlines():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
            sup = [x for x in lines if x.get("event") == "ready" and "pids" in x]
            if sup:
                return sup[0]["port"], [self.proc.pid] + sup[0]["pids"]
            argv = [str(a) for a in self.proc.args]  # type: ignore[union-attr]
            if "--workers" not in argv or "1" == argv[argv.index("--workers") + 1]:
                one = [x for x in lines if x.get("event") == "ready"]
                if one:
                    return one[0]["port"], [self.proc.pid]
            if self.proc.poll() is not None:
                raise SystemExit("server B exited: " + self.log.read_text()[-2000:])
            time.sleep(0.05)
        self.stop()
        raise SystemExit("server B did not start: " + self.log.read_text()[-2000:])

    def metric_sum(self, name: str, workers: int = 1) -> float:
        total = 0.0
        for i in range(workers):
            text = httpx.get("http://127.0.0.1:%d/metrics" % (self.metrics_port + i),
                             timeout=5).text
            for line in text.splitlines():
                if line.startswith(name + "{") or line.startswith(name + " "):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def throughput(tmp: Path, pg: servers.Postgres, redis: servers.Redis, url: str,
               keys: list[DeviceKey], anchor: bytes, workers: int, seconds: float,
               clients: int, concurrency: int) -> dict:
    b = B(tmp, "tp%d" % workers, "--workers", str(workers), "--store", url, "--db", url,
          "--redis", redis.url)
    try:
        ref_der = (tmp / "keys" / "server-suite0.der").read_bytes()
        warmup = 3.0
        start_count = time.time() + warmup
        stop_at = start_count + seconds
        jobs = [(b.port, 0, [k.private for k in keys], ref_der, anchor, b"reading t=21.5 h=40",
                 concurrency, start_count, stop_at, w) for w in range(clients)]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(clients) as pool:
            pending = pool.map_async(loadgen._worker, jobs)
            time.sleep(max(0.0, start_count - time.time()))
            client_pids = [p.pid for p in pool._pool]  # type: ignore[attr-defined]
            pg_pids = pg.backend_pids()
            cpu0 = [servers.cpu_seconds(p) for p in (b.pids, pg_pids, [redis.proc.pid],
                                                     client_pids)]
            t0 = time.time()
            time.sleep(max(0.0, stop_at - time.time()))
            cpu1 = [servers.cpu_seconds(p) for p in (b.pids, pg.backend_pids(),
                                                     [redis.proc.pid], client_pids)]
            t1 = time.time()
            results = pending.get(timeout=seconds + warmup + 60)
        completed = sum(r.completed for r in results)
        failed = sum(r.failed for r in results)
        wall = t1 - t0
        b_cpu, pg_cpu, redis_cpu, client_cpu = (round(y - x, 2) for x, y in zip(cpu0, cpu1))
        return {"workers": workers, "seconds": round(wall, 2), "completed": completed,
                "failed": failed, "handshakes_per_s": round(completed / wall, 1),
                "b_cpu_s": b_cpu, "postgres_cpu_s": pg_cpu, "redis_cpu_s": redis_cpu,
                "loadgen_cpu_s": client_cpu,
                "postgres_cpu_ms_per_handshake": round(pg_cpu * 1000 / completed, 3)
                if completed else None,
                "redis_cpu_ms_per_handshake": round(redis_cpu * 1000 / completed, 3)
                if completed else None}
    finally:
        b.stop()


async def _get_latency(url: str, ids: list[bytes]) -> dict:
    store = open_store(url)
    await store.connect()
    for i in ids[:20]:                          # connections, prepared statements
        await store.get(i)
    times = []
    for i in ids:
        t = time.perf_counter()
        rec = await store.get(i)
        times.append(time.perf_counter() - t)
        assert rec is not None
    await store.close()
    times.sort()
    return {"p50_us": round(times[len(times) // 2] * 1e6, 1),
            "p99_us": round(times[int(len(times) * 0.99)] * 1e6, 1),
            "mean_us": round(statistics.mean(times) * 1e6, 1), "n": len(times)}


def cold_in_b(tmp: Path, name: str, flags: list[str], keys: list[DeviceKey], anchor: bytes,
              count: int) -> dict:
    """Mean lookup latency inside B with no cache: every handshake asks the store."""
    b = B(tmp, name, "--cache-size", "0", *flags)
    try:
        ref_der = (tmp / "keys" / "server-suite0.der").read_bytes()
        start = time.time() + 0.5
        stop_at = start + 60
        job = (b.port, 0, [k.private for k in keys[:count]], ref_der, anchor, b"", 4, start,
               stop_at, 0)
        # one client, 4 at a time, until every device has handshaken about once
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            pending = pool.map_async(loadgen._worker, [job])
            deadline = time.monotonic() + 60
            while b.metric_sum("airshake_cs_lookup_seconds_count") < count:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            pool.terminate()
            del pending
        n = b.metric_sum("airshake_cs_lookup_seconds_count")
        s = b.metric_sum("airshake_cs_lookup_seconds_sum")
        return {"lookups": int(n), "mean_ms": round(s / n * 1000, 3) if n else None}
    finally:
        b.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    p.add_argument("--devices", type=int, default=300, help="enrolled devices (default 300)")
    p.add_argument("--clients", type=int, default=2, help="load generator processes")
    p.add_argument("--concurrency", type=int, default=32, help="handshakes in flight per "
                   "load generator process")
    p.add_argument("--workers", default="1,2,4", help="B worker counts (default 1,2,4)")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="airshake-bench-scaleout-"))
    pg, redis, slapd = servers.Postgres(), servers.Redis(), servers.Slapd()
    try:
        ca = CA.init(tmp / "ca", "ed25519", "bench CA")
        ca.issue_server(0, "b.bench", tmp / "keys")
        keys = [DeviceKey.generate(BACKEND, 0) for _ in range(args.devices)]
        recs = _records(ca, keys)
        pg_url = pg.url(pg.create_db("bench"))
        sqlite_url = "sqlite:///" + str(tmp / "store.db")
        asyncio.run(_enroll(pg_url, recs))
        asyncio.run(_enroll(sqlite_url, recs))
        ldap_url = _ldap_load(slapd, recs, ca)
        out: dict = {"cores": os.cpu_count(), "loadavg_1min_at_start": os.getloadavg()[0],
                     "devices": args.devices,
                     "clients": args.clients, "concurrency": args.concurrency,
                     "throughput": [], "cold_lookup": {}}
        for n in (int(x) for x in args.workers.split(",")):
            row = throughput(tmp, pg, redis, pg_url, keys, ca.cert_der, n, args.seconds,
                             args.clients, args.concurrency)
            out["throughput"].append(row)
            print(json.dumps(row), file=sys.stderr)
        ids = [r.id for r in recs]
        out["cold_lookup"]["store_get"] = {
            "sqlite": asyncio.run(_get_latency(sqlite_url, ids)),
            "postgresql": asyncio.run(_get_latency(pg_url, ids)),
            "ldap": asyncio.run(_get_latency(ldap_url, ids))}
        cs_port = servers.free_port()
        cs = subprocess.Popen([AIRSHAKE, "cs", "serve", "--db", sqlite_url, "--ca-dir",
                               str(tmp / "ca"), "--port", str(cs_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            loadgen._wait_http("http://127.0.0.1:%d" % cs_port, cs)
            count = min(200, len(keys))
            out["cold_lookup"]["in_b"] = {
                "sqlite": cold_in_b(tmp, "cold-sqlite", ["--store", sqlite_url], keys,
                                    ca.cert_der, count),
                "postgresql": cold_in_b(tmp, "cold-pg", ["--store", pg_url], keys,
                                        ca.cert_der, count),
                "ldap": cold_in_b(tmp, "cold-ldap", ["--store", ldap_url], keys,
                                  ca.cert_der, count),
                "cs_http_sqlite": cold_in_b(tmp, "cold-cs", ["--cs-url", "http://127.0.0.1:%d"
                                                             % cs_port], keys, ca.cert_der,
                                            count)}
        finally:
            cs.terminate()
            cs.wait(10)
        text = json.dumps(out, indent=1)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
    finally:
        for server in (pg, redis, slapd):
            server.close()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
