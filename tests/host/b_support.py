# tests/host/b_support.py: helpers for the server B tests: a PKI made with the real CLI,
# `airshake server` as a subprocess (waits for its `ready` log line), device A as the
# core's Initiator over a UDP socket, enrollment over the CS's HTTP API, and reading
# B's Prometheus metrics and SQLite records.
import asyncio
import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field

import httpx

from airshake import codec
from airshake import events as ev
from airshake import shell
from airshake.crypto import load_backend
from airshake.initiator import Initiator
from airshake.keys import DeviceKey
from host_server.udp_link import UdpLink
from testkit.metrics import parse_metrics
from testkit.cs_support import ADMIN_HEADERS, AIRSHAKE, CS_ENV, READER_TOKEN, ROOT, free_port, run

BACKEND = load_backend("pyca")
SERVER_NAME = "b.test"      # the CN of C_B that make_pki issues: the devices' pin


def make_pki(tmp, name="airshake test CA"):
    """`airshake ca init` + `ca issue-server` for suites 0 and 2; returns (ca_dir, key_dir)."""
    ca_dir, key_dir = tmp / "ca", tmp / "server-keys"
    for args in (("ca", "init", "--dir", ca_dir, "--alg", "ed25519", "--name", name),
                 ("ca", "issue-server", "--ca-dir", ca_dir, "--suite", 0, "--name", SERVER_NAME,
                  "--out", key_dir),
                 ("ca", "issue-server", "--ca-dir", ca_dir, "--suite", 2, "--name", SERVER_NAME,
                  "--out", key_dir)):
        out = run(*args)
        assert out.returncode == 0, out.stderr
    return ca_dir, key_dir


class BProcess:
    """`airshake server` on a free loopback UDP port, with metrics on a free TCP port."""

    def __init__(self, tmp, ca_dir, key_dir, cs_url, name="b", **flags):
        self.metrics_port = free_port()
        self.stderr_path = tmp / (name + ".stderr")
        self.db = tmp / (name + ".db")
        args = ["server", "--ca-cert", ca_dir / "ca.crt", "--key-dir", key_dir,
                "--cs-url", cs_url, "--port", 0, "--metrics-port", self.metrics_port,
                "--db", self.db, "--instance", name, "--rate-per-source", "1000:1000",
                "--rate-per-id", "100:100"]
        for k, v in flags.items():     # name=True: a flag without a value
            args += ["--" + k.replace("_", "-")] + ([] if v is True else [v])
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([AIRSHAKE, *map(str, args)], stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, cwd=ROOT,
                                     env=dict(os.environ, PYTHONFAULTHANDLER="1",
                                              AIRSHAKE_CS_TOKEN=READER_TOKEN))
        self.port = self._wait_ready()

    def _wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.get("event") == "ready":
                    return line["port"]
            if self.proc.poll() is not None:
                raise AssertionError("server B exited: " + self.stderr_path.read_text())
            time.sleep(0.05)
        self.stop()
        raise AssertionError("server B never logged ready: " + self.stderr_path.read_text())

    def log_lines(self):
        out = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "NOT JSON", "line": line})
        return out

    def metrics(self):
        """{(name, frozenset of labels except instance): value} from /metrics."""
        text = httpx.get("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5).text
        return parse_metrics(text)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:   # hung: its threads' stacks to stderr
                self.proc.send_signal(signal.SIGABRT)
                time.sleep(1)
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode

    def records(self):
        with sqlite3.connect(str(self.db)) as db:
            return db.execute("SELECT id_a, sid, seq, kind, data FROM records "
                              "ORDER BY received_at").fetchall()


def metric(metrics, name, **labels):
    """The value of one series; 0 if B declares the metric but has no such series yet
    (a label set never counted), an AssertionError if B has no such metric."""
    families = getattr(metrics, "families", None)
    if families is not None:
        assert name in families or any(k[0] == name for k in metrics), \
            "B exports no metric %s" % name
    return metrics.get((name, frozenset(labels.items())), 0.0)


# -- device A -----------------------------------------------------------------------

class Device:
    def __init__(self, suite=0, key=None):
        self.key = key or DeviceKey.generate(BACKEND, suite)
        self.id_hex = self.key.id_a.hex()
        self.server = None        # a ServerRef after a handshake: C_B by reference

    def enroll(self, cs_url, name=None):
        r = httpx.post(cs_url + "/enroll", timeout=10, headers=ADMIN_HEADERS, json={
            "name": name or "dev-" + self.id_hex,
            "public_key": base64.b64encode(self.key.spki).decode()})
        assert r.status_code == 201, r.text
        assert r.json()["id"] == self.id_hex
        time.sleep(0.1)   # B learns enrollments from the CS's event stream (ms on loopback)
        return self


@dataclass
class Result:
    events: list = field(default_factory=list)
    sent: list = field(default_factory=list)
    received: list = field(default_factory=list)
    initiator: object = None
    sock: object = None

    def of(self, kind):
        """The events of a kind; for an error class, the errors of the Dropped events
        (what A refused, typed)."""
        out = []
        for e in self.events:
            if isinstance(e, kind):
                out.append(e)
            elif isinstance(e, ev.Dropped) and isinstance(e.error, kind):
                out.append(e.error)
        return out

    @property
    def confirmed(self):
        return bool(self.of(ev.HandshakeConfirmed))

    @property
    def code(self):
        rejected = self.of(ev.ServerRejected)
        return rejected[-1].code if rejected else None

    @property
    def replies(self):
        return [e.data for e in self.of(ev.DataReceived)]


def handshake(port, device, anchor, data=b"", early=False, now=None, timeout=5.0,
              records=(), wait_replies=0):
    """Run A's side against B on 127.0.0.1:port (airshake.shell over a UdpLink) until
    confirmed or failed; then send records and wait for wait_replies data records.
    res.sock, the socket A used, stays open for the caller (B knows A by its address)."""
    ini = Initiator(BACKEND, [device.key], anchor, server=device.server, rto=0.5,
                    max_retries=4, server_name=SERVER_NAME)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    res = Result(initiator=ini, sock=sock)
    ini.connect(time.time() if now is None else now, data, early)

    def on_event(e):
        res.events.append(e)
        if isinstance(e, ev.HandshakeConfirmed):
            for r in records:
                ini.send(r)

    def done(e):
        return res.confirmed and len(res.replies) >= wait_replies

    async def run():
        # the link gets a duplicate of the socket: closing the link leaves res.sock open
        link = await UdpLink.open(("127.0.0.1", port), sock=sock.dup())
        try:
            await shell.drive(ini, link, time.time, until=done, idle=timeout,
                              deadline=time.time() + timeout, on_event=on_event,
                              on_send=res.sent.append, on_receive=res.received.append)
        finally:
            link.close()

    asyncio.run(run())
    sock.settimeout(0.05)
    if ini.server is not None:
        device.server = ini.server
    return res


def exchange(port, datagram, sock=None, wait=0.5):
    """Send one raw datagram; the answers that arrive within wait seconds."""
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    sock.sendto(datagram, ("127.0.0.1", port))
    out = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            out.append(sock.recvfrom(65535)[0])
        except socket.timeout:
            if out:
                break
    if own:
        sock.close()
    return out


def first_m1(device, anchor, now=None):
    ini = Initiator(BACKEND, [device.key], anchor, server=device.server,
                    server_name=SERVER_NAME)
    ini.connect(time.time() if now is None else now, b"")
    return ini, ini.datagrams_to_send(time.time())[0]


def error_code(datagram):
    if codec.message_type(datagram) != codec.TYPE_ERROR:
        return None
    return codec.decode_error(datagram).code


def wait_for(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


class CS:
    """`airshake cs serve` on a given loopback port (so it can be restarted on it)."""

    headers = ADMIN_HEADERS   # the admin token (cs_support.ADMIN_TOKEN) for enroll/revoke

    def __init__(self, tmp, ca_dir, port=None, name="cs"):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.db = tmp / (name + ".db")
        self._stderr = open(tmp / (name + ".stderr"), "a")
        self.proc = subprocess.Popen(
            [AIRSHAKE, "cs", "serve", "--db", str(self.db), "--ca-dir", str(ca_dir),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self._stderr, cwd=ROOT,
            env=dict(os.environ, **CS_ENV))
        ok = wait_for(self._healthy, timeout=15)
        assert ok, "cs serve did not become healthy"

    def _healthy(self):
        assert self.proc.poll() is None, "cs serve exited"
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
