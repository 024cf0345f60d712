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
