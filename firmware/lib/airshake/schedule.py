# airshake.schedule: HKDF, the transcript hash chain and every key derivation
# (docs/PROTOCOL.md §4). Rules: the only place labels appear; both roles call the
# same functions, so A and B cannot derive differently. HMAC comes from the backend;
# HKDF (RFC 5869) and the transcript are here, tested once for every backend.

HASH_LEN = 32


def extract(backend, salt, ikm):
    """HKDF-Extract(salt, IKM) with SHA-256."""
    return backend.hmac_sha256(salt, ikm)


def expand(backend, prk, info, length):
    """HKDF-Expand(PRK, info, L) with SHA-256."""
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


def kdf(backend, prk, label, context, length):
    """airshake-KDF: HKDF-Expand with info = len(label) || label || context."""
    return expand(backend, prk, bytes((len(label),)) + label + context, length)


def chain(backend, th, *parts):
    """TH_next = SHA-256(TH_prev || parts...): a hash chain, since MicroPython's
    hashlib has no copy() and a digest can be taken only once."""
    return backend.sha256(th + b"".join(parts))


# -- 0-RTT keys (PROTOCOL.md §4.3): from es and ss, bound to TH_1 --------------------
def early_keys(backend, th1, es, ss):
    prk0 = extract(backend, th1, es + ss)
    return kdf(backend, prk0, b"k_0", th1, 16), kdf(backend, prk0, b"iv_0", th1, 13)


# -- the handshake chain (PROTOCOL.md §4.2) -------------------------------------------
def prk_2e(backend, th2, ee):
    return extract(backend, th2, ee)


def prk_3e2m(backend, prk2e, es):
    return extract(backend, prk2e, es)


def mac_2(backend, prk3e2m, th2, length):
    return kdf(backend, prk3e2m, b"mac_2", th2, length)


def prk_4e3m(backend, prk3e2m, se):
    return extract(backend, prk3e2m, se)


def m3_keys(backend, prk4e3m, th3):
    return kdf(backend, prk4e3m, b"k_3", th3, 16), kdf(backend, prk4e3m, b"iv_3", th3, 13)


def prk_out(backend, prk4e3m, th4):
    return kdf(backend, prk4e3m, b"prk_out", th4, HASH_LEN)


# -- session secrets (PROTOCOL.md §5) --------------------------------------------------
def session_secrets(backend, prkout):
    """Returns (secret A->B, secret B->A, session id)."""
    return (kdf(backend, prkout, b"traffic_ab", b"", HASH_LEN),
            kdf(backend, prkout, b"traffic_ba", b"", HASH_LEN),
            kdf(backend, prkout, b"sid", b"", 4))


def traffic_keys(backend, secret):
    return kdf(backend, secret, b"key", b"", 16), kdf(backend, secret, b"iv", b"", 13)


def next_secret(backend, secret):
    """The key update: secret_{n+1} = KDF(secret_n, "update")."""
    return kdf(backend, secret, b"update", b"", HASH_LEN)
