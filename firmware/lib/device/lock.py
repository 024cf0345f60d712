# device.lock: owns whether the device's console gives a MicroPython REPL.
# A provisioned device is locked: it holds key.bin and its config.json says
# "console": "locked" (what `airshake device provision` writes unless --keep-repl). A
# locked device never reaches the REPL: boot.py turns Ctrl-C off as its first act
# (micropython.kbd_intr(-1)), and main.py never returns, every path ending in deep sleep
# (or a reset), so neither the prompt MicroPython starts after main.py nor its raw REPL
# (what mpremote uses) ever comes. The console still carries the firmware's own
# "airshake:" lines, which `airshake device monitor` follows.
# Open: no key yet (the host tools provision through the REPL), "console": "repl", no
# "console" setting (a device provisioned by earlier firmware), or the unlock pin held
# after a reset: board.UNLOCK_PIN (default GPIO0, the BOOT/PRG button of the ESP32
# boards here) pulled low within UNLOCK_WINDOW_S after a power-on or reset, never on a
# deep-sleep wake (press RESET, then hold BOOT: held during the reset itself, GPIO0 starts
# the ROM bootloader instead). The unix port has no pins: $AIRSHAKE_UNLOCK_PIN=1 is the
# held button there. The pin opens the REPL only after the device has forgotten its
# secrets (forget_secrets: key, seed, session, Wi-Fi password, LoRaWAN keys): with the
# board in hand one gets a REPL, never the key (which flash encryption keeps off the
# flash chip on production builds); the device is then provisioned again, a new ID.
# Rules: the decision is made once per boot (decide()); anything that fails while
# deciding leaves the console locked (a device whose settings cannot be read stays shut).
from device import files

LOCKED, OPEN, PIN = "locked", "open", "pin"
UNLOCK_WINDOW_S = 3
_DEFAULT_PIN = 0
_state = []  # type: list[str]


def ctrl_c(on):
    """Ctrl-C interrupts running code (on) or is an ordinary byte (off)."""
    try:
        import micropython
        micropython.kbd_intr(3 if on else -1)
    except (ImportError, AttributeError):
        pass


def configured():
    """True when the settings lock the console (a key, and "console": "locked")."""
    if not files.exists(files.KEY):
        return False
    data = files.read(files.CONFIG)
    if data is None:
        return True             # a key but no readable settings: stay shut
    import json
    try:
        cfg = json.loads(data)
    except ValueError:
        return True
    return not isinstance(cfg, dict) or cfg.get("console", "repl") != "repl"


def pin_held(board=None, window_s=0):
    """The unlock pin is held (polled for window_s seconds)."""
    try:
        import machine
        pin = machine.Pin(getattr(board, "UNLOCK_PIN", _DEFAULT_PIN), machine.Pin.IN,
                          machine.Pin.PULL_UP)
    except (ImportError, AttributeError, ValueError, OSError):
        import os
        getenv = getattr(os, "getenv", None)
        return getenv is not None and getenv("AIRSHAKE_UNLOCK_PIN") == "1"
    import time
    end = time.ticks_add(time.ticks_ms(), int(window_s * 1000))
    while True:
        if pin.value() == 0:
            return True
        if time.ticks_diff(end, time.ticks_ms()) <= 0:
            return False
        time.sleep_ms(50)


def decide(board=None, after_reset=False):
    """LOCKED, OPEN or PIN for this boot (the first answer stands until forget()). Ctrl-C
    comes back on unless LOCKED."""
    if _state:
        return _state[0]
    try:
        state = LOCKED if configured() else OPEN
        if state == LOCKED and pin_held(board, UNLOCK_WINDOW_S if after_reset else 0):
            forget_secrets()
            state = PIN
    except Exception:
        state = LOCKED
    _state.append(state)
    ctrl_c(state != LOCKED)
    return state


def forget_secrets():
    """Remove every secret the device holds; what is left (anchor, settings without
    keys, C_B, readings) is public or the device's own data."""
    for path in (files.KEY, files.SEED, files.SESSION, files.WIFI):
        files.remove(path)
    cfg = files.read_json(files.CONFIG)
    if cfg is not None and "lorawan" in cfg:
        del cfg["lorawan"]
        files.write_json(files.CONFIG, cfg)
    if files.exists(files.KEY):
        raise OSError("the device key could not be removed")


def booted(state):
    """Take state as this boot's decision, made before this interpreter started: the
    unix port's REPL that `airshake device sim` starts after its boot program decided
    (on an ESP32 the REPL shares the interpreter that ran main.py, and the module keeps
    its decision)."""
    del _state[:]
    _state.append(state)
    ctrl_c(state != LOCKED)


def locked():
    return decide() == LOCKED


def forget():
    del _state[:]
