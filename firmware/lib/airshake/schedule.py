# airshake.schedule: HKDF, the transcript hash chain and every key derivation
# (docs/PROTOCOL.md §4). Rules: the only place labels appear; both roles call the
# same functions, so A and B cannot derive differently. HMAC comes from the backend;
# HKDF (RFC 5869) and the transcript are here, tested once for every backend.
# Every key airshake derives is at most one SHA-256 block long (HASH_LEN), so each
# derivation is one HMAC: HKDF-Extract, or HKDF-Expand's first block over
# len(label) || label || context || 0x01, the label's bytes a constant.

HASH_LEN = 32
_BLOCK1 = b"\x01"          # HKDF-Expand's counter for the first block


def extract(backend, salt, ikm):
    """HKDF-Extract(salt, IKM) with SHA-256."""
    return backend.hmac_sha256(salt, ikm)


def expand(backend, prk, info, length):
    """HKDF-Expand(PRK, info, L) with SHA-256."""
    if length <= HASH_LEN:
        return backend.hmac_sha256(prk, info + _BLOCK1)[:length]
    if length > 255 * HASH_LEN:
        raise ValueError("HKDF output too long")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = backend.hmac_sha256(prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def _info(label):
    """airshake-KDF's info prefix: len(label) || label."""
    return bytes((len(label),)) + label


def kdf(backend, prk, label, context, length):
    """airshake-KDF: HKDF-Expand with info = len(label) || label || context."""
    return expand(backend, prk, _info(label) + context, length)


# the info prefixes len(label) || label, and whole infos (with 0x01) where the context
# is empty: literals, so a frozen image keeps them in flash (tests/host/test_schedule.py
# checks each against its label)
_K_0 = b"\x03k_0"
_IV_0 = b"\x04iv_0"
_MAC_2 = b"\x05mac_2"
_K_3 = b"\x03k_3"
_IV_3 = b"\x04iv_3"
_PRK_OUT = b"\x07prk_out"
_TRAFFIC_AB = b"\x0atraffic_ab\x01"
_TRAFFIC_BA = b"\x0atraffic_ba\x01"
_SID = b"\x03sid\x01"
_KEY = b"\x03key\x01"
_IV = b"\x02iv\x01"
_UPDATE = b"\x06update\x01"


def chain(backend, th, *parts):
    """TH_next = SHA-256(TH_prev || parts...): a hash chain, since MicroPython's
    hashlib has no copy() and a digest can be taken only once."""
    return backend.sha256(th + b"".join(parts))


# -- 0-RTT keys (PROTOCOL.md §4.3): from es and ss, bound to TH_1 --------------------
# (each derivation calls the backend's HMAC itself: one call, not two, per key)
def early_keys(backend, th1, es, ss):
    prk0 = backend.hmac_sha256(th1, es + ss)
    return (backend.hmac_sha256(prk0, _K_0 + th1 + _BLOCK1)[:16],
            backend.hmac_sha256(prk0, _IV_0 + th1 + _BLOCK1)[:13])


# -- the handshake chain (PROTOCOL.md §4.2) -------------------------------------------
def prk_2e(backend, th2, ee):
    return backend.hmac_sha256(th2, ee)


def prk_3e2m(backend, prk2e, es):
    return backend.hmac_sha256(prk2e, es)


def mac_2(backend, prk3e2m, th2, length):
    return backend.hmac_sha256(prk3e2m, _MAC_2 + th2 + _BLOCK1)[:length]


def prk_4e3m(backend, prk3e2m, se):
    return backend.hmac_sha256(prk3e2m, se)


def m3_keys(backend, prk4e3m, th3):
    return (backend.hmac_sha256(prk4e3m, _K_3 + th3 + _BLOCK1)[:16],
            backend.hmac_sha256(prk4e3m, _IV_3 + th3 + _BLOCK1)[:13])


def prk_out(backend, prk4e3m, th4):
    return backend.hmac_sha256(prk4e3m, _PRK_OUT + th4 + _BLOCK1)


# -- session secrets (PROTOCOL.md §5) --------------------------------------------------
def session_secrets(backend, prkout):
    """Returns (secret A->B, secret B->A, session id)."""
    h = backend.hmac_sha256
    return h(prkout, _TRAFFIC_AB), h(prkout, _TRAFFIC_BA), h(prkout, _SID)[:4]


def traffic_keys(backend, secret):
    h = backend.hmac_sha256
    return h(secret, _KEY)[:16], h(secret, _IV)[:13]


def next_secret(backend, secret):
    """The key update: secret_{n+1} = KDF(secret_n, "update")."""
    return backend.hmac_sha256(secret, _UPDATE)
