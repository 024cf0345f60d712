# device.session_store: owns airshake-data/session.bin, the session kept across deep sleep:
#   "ASE1" | binding (8) | Session.export() | SHA-256(all before)[:4]
# binding ties the session to the key it was made with (device.keystore.binding()).
# load() returns None for a missing, foreign, corrupt or expired file and never raises:
# the device then handshakes again. save() replaces the file atomically; call it after
# every seal() and before the record goes out (PROTOCOL.md §5.4: an older export must
# never be loaded again, it would reuse nonces).
import hashlib
from device import files

_MAGIC = b"ASE1"
_BIND = 8


def save(session, binding):
    body = _MAGIC + binding + session.export()
    files.write(files.SESSION, body + hashlib.sha256(body).digest()[:4])


def load(backend, binding):
    """The saved Session, or None (missing, foreign, corrupt)."""
    data = files.read(files.SESSION)
    if data is None or len(data) < len(_MAGIC) + _BIND + 4:
        return None
    body, check = data[:-4], data[-4:]
    if hashlib.sha256(body).digest()[:4] != check or body[:4] != _MAGIC:
        return None
    if body[4:4 + _BIND] != binding:
        return None
    try:
        from airshake.session import Session
        return Session.from_bytes(backend, body[4 + _BIND:])
    except Exception:       # DecodeError, or anything a damaged file provokes
        return None


def clear():
    files.remove(files.SESSION)
