# device.entropy: owns the device's randomness: seed_entropy() (draws fresh entropy and
# refreshes the persisted seed airshake-data/seed.bin) and random(n), the generator that
# device.app installs as the crypto backend's random() so that every key the device
# makes (its static key, every ephemeral) mixes os.urandom with the seed.
#
# Why: the ESP32 hardware RNG is only a true RNG while the RF subsystem (Wi-Fi or BT)
# is on; with RF off it degrades to a pseudo-random sequence (ESP-IDF "Random Number
# Generation"; the bootloader's SAR-ADC source is disabled once the app runs). A LoRa
# radio does not count. So seed_entropy() turns the Wi-Fi station on (not connecting,
# just powered) while it draws, then restores the previous state, and keeps the result
# in flash: later draws with RF off still depend on entropy gathered with RF on.
# On the unix port os.urandom is the kernel's CSPRNG and the same code path runs.
#
# Construction: a hash chain. pool = H("pool" || seed || urandom(32) || ids/time);
# random(n) returns H("out" || pool || ctr || urandom(16))..., and the seed on flash is
# replaced by H("next" || pool) before any output is used (a reboot never replays it).
# Nothing here prints or returns the seed or the pool.
import hashlib
import os
from device import files

_pool = None
_ctr = 0


def _sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def _noise():
    # cheap per-boot variation; not counted as entropy
    out = b""
    try:
        import time
        out += str(time.ticks_us()).encode() + str(time.time()).encode()
    except (ImportError, AttributeError):
        import time
        out += str(time.time_ns()).encode()
    try:
        import machine
        out += machine.unique_id()
    except (ImportError, AttributeError):
        pass
    return out


def _rf_on():
    """On an ESP32, power the Wi-Fi radio if it is off; returns the WLAN to switch
    off again afterwards, or None (already on, or not an ESP32)."""
    try:
        import sys
        if not sys.platform.startswith("esp32"):
            return None
        import network
        wlan = network.WLAN(network.STA_IF)
        if wlan.active():
            return None
        wlan.active(True)
        return wlan
    except (ImportError, AttributeError, OSError):
        return None


def seed_entropy():
    """Gather fresh entropy with the RF on, mix it with the persisted seed, write the
    next seed, and (re)initialise the pool random() draws from."""
    global _pool, _ctr
    wlan = _rf_on()
    try:
        if wlan is not None:
            import time
            time.sleep_ms(50)       # let the RF calibrate before sampling the RNG
        fresh = os.urandom(32) + os.urandom(32)
    finally:
        if wlan is not None:
            wlan.active(False)
    old = files.read(files.SEED) or b""
    pool = _sha(b"airshake pool", old, fresh, _noise())
    files.write(files.SEED, _sha(b"airshake next", pool))
    _pool, _ctr = pool, 0


def random(n):
    """n random bytes; seeds on first use."""
    global _ctr
    if _pool is None:
        seed_entropy()
    out = b""
    while len(out) < n:
        _ctr += 1
        out += _sha(b"airshake out", _pool, _ctr.to_bytes(4, "big"), os.urandom(16))
    return out[:n]


def forget():
    """Drop the pool from RAM (after the handshake; a new wake seeds again)."""
    global _pool
    _pool = None
