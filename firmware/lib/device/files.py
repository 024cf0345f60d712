# device.files: owns the device's data directory `airshake-data/` (paths relative to
# the current directory; on an ESP32 that is /) and the only ways firmware writes to it:
# atomic replace (write a temp file, then rename) and tolerant reads (a missing or
# unreadable file reads as None, never an exception).
import os

DATA = "airshake-data"
OLD_DATA = "airshake"            # earlier firmware; shadowed the core package
KEY = DATA + "/key.bin"          # suite byte + 32-byte private scalar (never leaves)
SEED = DATA + "/seed.bin"        # persisted entropy seed (never leaves)
CONFIG = DATA + "/config.json"   # settings (see device.config)
ANCHOR = DATA + "/anchor.der"    # the CA certificate C_B must chain to
SERVER = DATA + "/server.der"    # optional cached C_B (verified once, then re-parsed)
SESSION = DATA + "/session.bin"  # device.session_store format
STATE = DATA + "/state.json"     # wake counter, clock offset, misses (device.app)
WIFI = DATA + "/wifi.json"       # optional {"ssid", "password"} for the udp radio
OUTBOX = DATA + "/outbox.bin"    # readings not yet acknowledged by B (device.outbox)
SELFTEST = DATA + "/selftest.json"  # the self-tests' passes, by code key (device.backend)


def migrate_old_dir():
    """Rename the data directory of earlier firmware (OLD_DATA) to DATA, once: only when
    it holds a key or settings and DATA does not exist yet."""
    if exists(DATA) or not (exists(OLD_DATA + "/key.bin")
                            or exists(OLD_DATA + "/config.json")):
        return
    try:
        os.rename(OLD_DATA, DATA)
    except OSError as e:     # the wake goes on; the device then reports its missing key
        print("airshake: error migrating %s/ to %s/: %s" % (OLD_DATA, DATA, e))


def ensure_dir():
    try:
        os.mkdir(DATA)
    except OSError:
        pass


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def write(path, data):
    """Replace path with data atomically: a crash leaves the old or the new file."""
    ensure_dir()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        os.rename(tmp, path)
    except OSError:
        # a filesystem whose rename does not replace (FAT): not atomic, but still whole
        remove(path)
        os.rename(tmp, path)


def read_json(path):
    """The dict in path, or None if missing or not a JSON object."""
    import json
    data = read(path)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def write_json(path, value):
    import json
    write(path, json.dumps(value).encode())
