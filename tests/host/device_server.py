"""tests/host/device_server.py: a stand-in server B for the firmware tests, and the
helpers that build a device root directory and run the firmware on the MicroPython
unix binary.

TestServerB makes a fresh CA (Ed25519 for suite 0, P-256 for suite 2) and B's key and
C_B, enrolls devices by their public SPKI (issuing C_A with SKI = ID_A), and runs the
core's Responder (pyca backend) over UDP in a thread: handshakes keyed by peer address,
sessions by SID (a device comes back from deep sleep on a new UDP port), with the core's
FragmentLink at the same MTU as the device. Every datagram with application data is
answered "ack:" + data. `wire` records what crossed, `received` the application data.

The real server B (host_server/) can replace it: the tests need only .port, .anchor_der,
.enroll(spki_der), .wire, .received, .sessions and the context manager."""
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import NameOID

from airshake import events as ev
from airshake.crypto import load_backend
from airshake.errors import AirshakeError
from airshake.fragments import FragmentLink
from airshake.keys import ServerKey
from airshake.responder import Responder, ResponderConfig
from airshake_tools.device.layout import DATA_DIR

from udp_thread import UdpThread

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
DER = serialization.Encoding.DER
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
END = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)
KIND = ("m1", "m2", "m3", "error", "record", "fragment", "ack", "?")


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(ca_key, issuer, pub, cn, serial, ca=False, ski=None):
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer)
         .public_key(pub).serial_number(serial)
         .not_valid_before(START).not_valid_after(END)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                        critical=True))
    if ski is not None:
        b = b.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    alg = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(ca_key, alg)


class TestServerB(UdpThread):
    __test__ = False

    def __init__(self, suite=0, mtu=1200, id_len=8, drop=None, reply=True):
        self.suite = suite
        self.mtu = mtu
        self.id_len = id_len
        self.drop = drop                  # drop(direction "up"/"down", frame) -> bool
        self.reply = reply
        self.backend = load_backend("pyca")
        self.ca_key = ec.generate_private_key(ec.SECP256R1()) if suite == 2 \
            else ed25519.Ed25519PrivateKey.generate()
        b_key, b_private = self._new_key()
        self.ca = _issue(self.ca_key, _name("airshake test CA"), self.ca_key.public_key(),
                         "airshake test CA", 1, ca=True)
        self.anchor_der = self.ca.public_bytes(DER)
        self.certs = {}
        self._serial = 10
        self._set_key(b_key, b_private)
        UdpThread.__init__(self)
        self.handshakes = {}     # addr -> Responder
        self.links = {}          # addr -> FragmentLink
        self.sessions = {}       # sid -> Session
        self.wire = []           # (direction, kind, length)
        self.received = []       # (how, data): how in "m3", "early", "record"
        self.errors = []
        self._early = {}
        self._lock = threading.Lock()

    # -- certificates -----------------------------------------------------------------
    def _new_key(self):
        if self.suite == 2:
            key = ec.generate_private_key(ec.SECP256R1())
            return key, key.private_numbers().private_value.to_bytes(32, "big")
        key = x25519.X25519PrivateKey.generate()
        return key, key.private_bytes(serialization.Encoding.Raw,
                                      serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())

    def _set_key(self, b_key, b_private):
        self._serial += 1
        self.c_b = _issue(self.ca_key, self.ca.subject, b_key.public_key(), "b.airshake.test",
                          self._serial, ski=b"\x01" * 8).public_bytes(DER)
        self.config = ResponderConfig(self.backend, [ServerKey(self.backend, self.suite,
                                                               b_private, self.c_b)],
                                      id_len=self.id_len)

    def rotate_key(self):
        """B gets a new static key and C_B from the same CA (sessions are kept)."""
        with self._lock:
            self._set_key(*self._new_key())

    def enroll(self, spki_der):
        """Issue C_A for a device's public key; returns its ID_A (bytes)."""
        pub = serialization.load_der_public_key(spki_der)
        id_a = hashlib.sha256(spki_der).digest()[:self.id_len]
        self._serial += 1
        cert = _issue(self.ca_key, self.ca.subject, pub, "device-" + id_a.hex(), self._serial,
                      ski=id_a)
        self.certs[id_a] = cert.public_bytes(DER)
        return id_a

    # -- the UDP loop (UdpThread calls handle) ----------------------------------------
    def handle(self, frame, addr):
        with self._lock:
            try:
                self._frame(frame, addr)
            except Exception as e:  # recorded for the test, never fatal to B
                self.errors.append(repr(e))

    def _send(self, addr, message):
        for frame in self.links[addr].outgoing(message):
            self._out(addr, frame)

    def _out(self, addr, frame):
        self.wire.append(("down", KIND[frame[0] >> 5], len(frame)))
        if self.drop and self.drop("down", frame):
            return
        self.sock.sendto(frame, addr)

    def _frame(self, frame, addr):
        link = self.links.get(addr)
        if link is None:
            link = self.links[addr] = FragmentLink(self.mtu)
        self.wire.append(("up", KIND[frame[0] >> 5], len(frame)))
        if self.drop and self.drop("up", frame):
            return
        message, back = link.incoming(frame, time.time())
        for f in back:
            self._out(addr, f)
        if message is None:
            return
        kind = message[0] >> 5
        self.wire.append(("msg", KIND[kind], len(message)))
        if kind == 4:
            return self._record(message, addr)
        res = self.handshakes.get(addr)
        if kind == 0 and (res is None or res.state != 2 or message != res._m1):
            res = self.handshakes[addr] = Responder(self.config, time.time())
        if res is None:
            return
        now = int(time.time())
        try:
            res.receive(message, now)
        except AirshakeError as e:
            self.errors.append(type(e).__name__)
        while (e := res.next_event()) is not None:
            if isinstance(e, ev.NeedCredential):
                cert = self.certs.get(e.id_a)
                if cert is None:
                    res.reject_credential(3)
                else:
                    res.provide_credential(cert, now)
            elif isinstance(e, ev.EarlyData):
                self.received.append(("early", e.data))
                self._early[addr] = e.data
            elif isinstance(e, ev.DataReceived):
                self.received.append(("m3", e.data))
                if self.reply:
                    res.send(b"ack:" + e.data)
            elif isinstance(e, ev.HandshakeComplete):
                self.sessions[e.session.sid] = e.session
                early = self._early.pop(addr, None)
                if early is not None and self.reply:
                    res.send(b"ack:" + early)
        for out in res.datagrams_to_send(now):
            self._send(addr, out)

    def _record(self, message, addr):
        session = self.sessions.get(bytes(message[1:5]))
        if session is None:
            self.errors.append("record for an unknown session")
            return
        try:
            _, data = session.open(message)
        except AirshakeError as e:
            self.errors.append(type(e).__name__)
            return
        self.received.append(("record", data))
        if self.reply:
            self._send(addr, session.seal(b"ack:" + data))

    def count(self, direction, kind):
        return sum(1 for d, k, _ in self.wire if d == direction and k == kind)

    def sizes(self, kind):
        return [n for d, k, n in self.wire if d == "msg" and k == kind] + \
            [n for d, k, n in self.wire if d == "down" and k == kind]


# -- the device side --------------------------------------------------------------------
def make_device_root(path, config, anchor_der=None, board="unix"):
    """A device filesystem as `airshake device deploy` lays it out."""
    os.makedirs(path, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "firmware", "main.py"), path)
    shutil.copy(os.path.join(ROOT, "firmware", "boot.py"), path)
    shutil.copytree(os.path.join(ROOT, "firmware", "lib"), os.path.join(path, "lib"),
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "pyca.py"))
    shutil.copy(os.path.join(ROOT, "boards", board + ".py"), os.path.join(path, "board.py"))
    data = os.path.join(path, DATA_DIR)
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "config.json"), "w") as f:
        json.dump(config, f)
    if anchor_der is not None:
        with open(os.path.join(data, "anchor.der"), "wb") as f:
            f.write(anchor_der)
    return path


def compile_lib(root):
    """Replace the device root's lib/**/*.py by .mpy (mpy-cross -O2), as a device carries
    them; returns the total .mpy size."""
    total = 0
    for folder, _, names in os.walk(os.path.join(root, "lib")):
        for name in names:
            if name.endswith(".py"):
                src = os.path.join(folder, name)
                subprocess.run([os.path.join(ROOT, ".venv", "bin", "mpy-cross"), "-O2", "-o",
                                src[:-3] + ".mpy", src], check=True)
                os.remove(src)
                total += os.path.getsize(src[:-3] + ".mpy")
    return total


def mp(root, *args, code=None, heap=None, timeout=180):
    """Run the MicroPython unix binary in the device root."""
    cmd = [MICROPYTHON]
    if heap:
        cmd += ["-X", "heapsize=" + heap]
    cmd += ["-c", code] if code is not None else list(args)
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)


def provision(root, suite=0):
    """Generate the key on the device, as `airshake device provision` does; returns the
    public SPKI."""
    out = mp(root, code="import sys; sys.path.append('lib'); from device import keystore; "
                        "keystore.generate(%d); print(keystore.public_spki().hex())" % suite)
    assert out.returncode == 0, out.stdout + out.stderr
    return bytes.fromhex(out.stdout.strip().splitlines()[-1])


def run_cycles(root, cycles=1, heap=None):
    return mp(root, "main.py", "--cycles", str(cycles), "--interval", "0", heap=heap)


def lines(out, step=None):
    """The firmware's log lines ("airshake: <step> ..."); with step, what follows it."""
    got = [ln[len("airshake: "):] for ln in out.stdout.splitlines()
           if ln.startswith("airshake: ")]
    if step is None:
        return got
    return [(ln.split(" ", 1) + [""])[1] for ln in got if ln.split(" ", 1)[0] == step]
