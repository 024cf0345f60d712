# RAM a device gets back (issue 12 item 3): airshake.ram.release() of the certificate parser
# once C_B is held by reference, measured with gc.mem_alloc() in a MicroPython process of
# its own (the stock binary, or the twin with AIRSHAKE_MICROPYTHON), where nothing else
# holds the modules. A control run without the release shows the drop is the release's.
import subprocess

from testkit import hs_support
from testkit.device_server import MICROPYTHON, ROOT

SCRIPT = """
import sys, gc
sys.path.insert(0, "firmware/lib")
import airshake
from airshake.crypto import load_backend
from airshake.keys import ServerRef
b = load_backend("pure", ("sha256",))
ref = ServerRef(b, 0, bytes.fromhex(%r))
ref.check_pin(%r)
gc.collect()
held = gc.mem_alloc()
if %r:
    from airshake.ram import release
    release("airshake.x509", "airshake.der")
gc.collect()
print(held, gc.mem_alloc(), "airshake.x509" in sys.modules)
"""


def _run(release):
    cert = hs_support.cert(0, "server_cert").hex()
    out = subprocess.run([MICROPYTHON, "-c", SCRIPT % (cert, hs_support.SERVER_NAME, release)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    held, after, loaded = out.stdout.split()
    return int(held) - int(after), loaded == "True"


def test_releasing_the_certificate_parser_gives_its_ram_back():
    freed, loaded = _run(True)
    assert not loaded
    kept, still = _run(False)
    assert still
    print("released x509 + der: %d bytes back (control: %d)" % (freed, kept))
    assert freed > 2000 and kept < 200, (freed, kept)


LAZY_ERRORS = """
import sys
sys.path.insert(0, "firmware/lib")
from airshake.crypto import load_backend, handshake_primitives
prims = handshake_primitives(0, True)
b = load_backend("pure", prims, trusted=prims)   # a later wake: self-tests recorded
from airshake import codec, errors, events, shell
from airshake.initiator import Initiator
from airshake.keys import ServerRef
ref = ServerRef(b, 0, bytes.fromhex(%r))
ref.check_pin(%r)
made = [n for n, _, _ in errors._ON_FIRST_USE if n in errors.__dict__]
made += [n for n in ("ClockSet", "ServerRejected", "HandshakeFailed", "Dropped")
         if n in events.__dict__]
try:
    codec.decode_record(b"")
except errors.AirshakeError as e:
    caught = e
from airshake.errors import DecodeError
print(" ".join(made) or "-", type(caught) is DecodeError is errors.DecodeError,
      "DecodeError" in errors.__dict__)
"""


def test_a_device_holds_no_error_class_until_it_meets_bad_input():
    # airshake.errors makes the typed errors of remote input on first use, and
    # airshake.events the events of a handshake that goes wrong: a later wake
    # (suite 0 by reference, self-tests recorded) that loads the Initiator makes none of
    # them (a first boot's self-tests make the two their rejection tests raise); the first
    # bad input makes its class, the one every import then sees
    cert = hs_support.cert(0, "server_cert").hex()
    out = subprocess.run([MICROPYTHON, "-c", LAZY_ERRORS % (cert, hs_support.SERVER_NAME)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    made, same, kept = out.stdout.split()
    assert made == "-" and same == "True" and kept == "True", out.stdout
