# airshake.ram.release() and what A keeps of C_B (keys.ServerRef: plain values, no x509
# object, docs/ARCHITECTURE.md "RAM on the device"): with airshake.x509 and airshake.der
# released, a held C_B still passes its pin check and a handshake by reference completes.
# That the RAM comes back is tests/host/test_device_ram.py (a process of its own).
import sys

import airshake
from airshake.errors import CertificateError, UsageError
from airshake.ram import release
from airshake.initiator import CONFIRMED, Initiator
from airshake.keys import ServerRef
from testkit.hs_support import SERVER_NAME, Pair, anchor, cert, device_key
from testkit.support import backends, raises_

CERT_MODULES = ("airshake.x509", "airshake.der")


def _restore(saved):
    """Put the module objects back: the rest of the run (one process for all portable
    tests) keeps the x509 it started with."""
    for name, mod in saved.items():
        sys.modules[name] = mod
        setattr(airshake, name.rpartition(".")[2], mod)


def _held():
    import airshake.der
    import airshake.x509
    return {"airshake.x509": airshake.x509, "airshake.der": airshake.der}


def test_a_held_c_b_works_with_x509_released():
    backend = backends()[0]
    saved = _held()
    try:
        _run_with_x509_released(backend)
    finally:
        _restore(saved)


def _run_with_x509_released(backend):
    for suite in (0, 2):
        key = device_key(backend, suite)        # a device makes its keys first
        ref = ServerRef(backend, suite, cert(suite, "server_cert"))
        release(*CERT_MODULES)
        assert not [m for m in CERT_MODULES if m in sys.modules]
        raises_(CertificateError, ref.check_pin, "another.example")   # imports x509 again
        assert ref.pinned_to is None
        ref.check_pin(SERVER_NAME)
        assert ref.pinned_to == SERVER_NAME
        release(*CERT_MODULES)
        ini = Initiator(backend, [key], anchor(suite), server=ref, server_name=SERVER_NAME)
        # the Initiator's own pin check of the same name needed no certificate code
        assert "airshake.x509" not in sys.modules
        assert ini.server is ref
        pair = Pair(backend, suite, ini=ini)    # B's side loads x509 again: its C_B
        assert pair.run() == [43, 41, 9]
        assert pair.ini.state == CONFIRMED


def test_raw_key_spki_needs_no_certificate_code_and_matches_x509():
    from airshake import keys, x509
    backend = backends()[0]
    for kind, public in (("x25519", backend.x25519_public(bytes(range(32)))),
                         ("p256", backend.p256_public(bytes(range(1, 33))))):
        assert keys.spki(kind, public) == x509.spki_for(kind, public), kind
    raises_(UsageError, keys.spki, "p256", b"\x02" + bytes(64))   # x509 refuses it
    raises_(UsageError, keys.spki, "x25519", bytes(31))


def test_loading_collects_every_few_kb_until_loaded():
    # airshake.ram.loading(): MicroPython's allocation threshold while a wake loads its
    # code (firmware/main.py), off again before the handshake (device.app); CPython's
    # collector has no such threshold and the calls leave it alone
    import gc
    from airshake import ram
    threshold = getattr(gc, "threshold", None)
    before = threshold() if threshold else None
    try:
        ram.loading()
        if threshold:
            assert threshold() == ram.LOAD_THRESHOLD
        ram.loaded()
        if threshold:
            assert threshold() == -1
    finally:
        if threshold:
            threshold(before)
