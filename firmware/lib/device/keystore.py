# device.keystore: owns A's static private key in airshake-data/key.bin (one suite byte and
# the 32-byte scalar). The key is generated on the device from device.entropy and never
# leaves it: nothing here prints or returns the private key; only the public key (its
# SubjectPublicKeyInfo DER) and the identifier ID_A = H(SPKI)[:id_len] are exported.
# Importable on CPython too (the host tools and tests use it through mpremote or
# directly); there it uses whichever backend load_backend finds.
# Provisioning from a device-root directory (what `airshake device provision` runs):
#   import sys; sys.path.append('lib'); from device import keystore
#   keystore.generate(0); print(keystore.public_spki().hex())
import hashlib
from device import files, entropy

_SCALAR_LEN = 32
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_KEY_TYPE = {0: "x25519", 2: "p256"}


class KeystoreError(Exception):
    pass


def exists():
    return files.exists(files.KEY)


def _read():
    data = files.read(files.KEY)
    if data is None:
        raise KeystoreError("no device key (run `airshake device provision`)")
    if len(data) != 1 + _SCALAR_LEN or data[0] not in _KEY_TYPE:
        raise KeystoreError("device key file is corrupt")
    return data[0], data[1:]


def suite():
    return _read()[0]


def _backend(suite_no):
    from airshake.crypto import load_backend
    from airshake.errors import BackendError
    from device.backend import choose
    prims = ("sha256", "p256") if suite_no == 2 else ("sha256", "x25519")
    try:
        return load_backend(choose(), prims)
    except BackendError:            # CPython has no cryptolib: take pyca
        return load_backend(None, prims)


def generate(suite_no=0, force=False):
    """Make a new private key for suite 0 (X25519) or 2 (P-256) from os.urandom mixed
    with the persisted seed. Refuses to replace an existing key unless force=True
    (a new key is a new device identity: it must be enrolled again).
    Returns the public SubjectPublicKeyInfo DER."""
    if suite_no not in _KEY_TYPE:
        raise KeystoreError("suite %r: the device generates keys for suites 0 and 2 only"
                            % (suite_no,))
    if exists() and not force:
        raise KeystoreError("a device key exists already (force=True replaces it)")
    entropy.seed_entropy()
    while True:
        k = hashlib.sha256(b"airshake key" + entropy.random(32)).digest()
        v = int.from_bytes(k, "big")
        if suite_no != 2 or 0 < v < _P256_N:
            break
    files.write(files.KEY, bytes((suite_no,)) + k)
    del k, v
    return public_spki()


def public_spki():
    """SubjectPublicKeyInfo DER of the device's public key."""
    from airshake import x509
    suite_no, scalar = _read()
    b = _backend(suite_no)
    pub = b.p256_public(scalar) if suite_no == 2 else b.x25519_public(scalar)
    return x509.spki_for(_KEY_TYPE[suite_no], pub)


def device_id(id_len=8):
    """ID_A as hex: the first id_len bytes of SHA-256(SPKI) (airshake.keys.identifier)."""
    from airshake.keys import identifier
    return identifier(public_spki(), id_len).hex()


def load_device_key(backend, id_len=8):
    """The airshake.keys.DeviceKey for the handshake."""
    from airshake.keys import DeviceKey
    suite_no, scalar = _read()
    return DeviceKey(backend, suite_no, scalar, id_len)


def binding():
    """8 bytes that change when the key changes (a keyed hash of key.bin, not
    reversible): session.bin is tied to the key it was made with, without the cost
    of deriving the public key on every wake."""
    data = files.read(files.KEY) or b""
    return hashlib.sha256(b"airshake binding" + data).digest()[:8]
