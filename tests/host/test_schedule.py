# tests/host/test_schedule.py: airshake.schedule's derivations (one HMAC each, their labels
# as literals) against an independent HKDF-Expand (pyca's), label by label, on the core's
# backend and on B's, so a mistyped label literal or a wrong fast path fails here by name.
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from airshake import schedule
from airshake.crypto import load_backend
from host_server.server_b.backend import load_server_backend

PRK = bytes(range(32))
CTX = bytes(range(100, 132))


def reference(label, context, length, prk=PRK):
    info = bytes((len(label),)) + label + context
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


@pytest.fixture(params=["pyca", "server"])
def backend(request):
    return load_backend("pyca") if request.param == "pyca" else load_server_backend((0,))


def test_each_derivation_is_hkdf_expand_of_its_label(backend):
    b = backend
    assert schedule.early_keys(b, CTX, b"e" * 32, b"s" * 32) == (
        reference(b"k_0", CTX, 16, schedule.extract(b, CTX, b"e" * 32 + b"s" * 32)),
        reference(b"iv_0", CTX, 13, schedule.extract(b, CTX, b"e" * 32 + b"s" * 32)))
    assert schedule.mac_2(b, PRK, CTX, 8) == reference(b"mac_2", CTX, 8)
    assert schedule.m3_keys(b, PRK, CTX) == (reference(b"k_3", CTX, 16),
                                             reference(b"iv_3", CTX, 13))
    assert schedule.prk_out(b, PRK, CTX) == reference(b"prk_out", CTX, 32)
    assert schedule.session_secrets(b, PRK) == (reference(b"traffic_ab", b"", 32),
                                                reference(b"traffic_ba", b"", 32),
                                                reference(b"sid", b"", 4))
    assert schedule.traffic_keys(b, PRK) == (reference(b"key", b"", 16),
                                             reference(b"iv", b"", 13))
    assert schedule.next_secret(b, PRK) == reference(b"update", b"", 32)


@pytest.mark.parametrize("length", [1, 13, 32, 33, 64, 65, 255 * 32])
def test_kdf_of_any_length_is_hkdf_expand(backend, length):
    assert schedule.kdf(backend, PRK, b"label", CTX, length) == reference(b"label", CTX,
                                                                           length)


def test_kdf_longer_than_255_blocks_is_refused(backend):
    with pytest.raises(ValueError):
        schedule.kdf(backend, PRK, b"label", CTX, 255 * 32 + 1)
