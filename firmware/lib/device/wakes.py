# device.wakes: owns the device's run from boot to sleep: main() decides the console
# lock for this boot (device.lock; the unlock window after a reset), runs wake cycles
# (device.app.Cycle) and sleeps between them: deep sleep on an ESP32, where the next wake
# starts over from boot.py; on the unix port, --cycles N --interval S in one process,
# every cycle re-reading every file like a wake-up, except on a locked device, whose
# process ends after its first sleep. A locked device never returns from main().
import gc
import sys
import time

import asyncio
from device import entropy, lock
from device import backend as backend_mod
from device import config as config_mod
from device.app import Cycle, load_board, log


def _arg(argv, name, default):
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return default


def _reset_between_cycles():
    # the unix port runs several wakes in one process: forget what RAM would lose
    from airshake.crypto import forget_backends
    forget_backends()
    backend_mod.forget()
    entropy.forget()
    gc.collect()
    from airshake import ram
    ram.loading()          # as main.py at a real wake's start


def main(argv=None):
    """Run wake cycles. On a board with DEEP_SLEEP the first cycle ends in deep sleep
    (the next wake starts over from boot.py). Otherwise: --cycles N (default 1) and
    --interval S (default: the config's interval_s) between them. A locked device
    (device.lock) never returns: where there is no deep sleep (the unix port) its process
    ends after the first cycle's sleep, as RAM would be lost."""
    argv = sys.argv if argv is None else argv
    cycles = int(_arg(argv, "--cycles", "1"))
    interval = _arg(argv, "--interval", None)
    board = None
    try:
        board = load_board()
        deep = bool(getattr(board, "DEEP_SLEEP", False))
    except Exception as e:
        # without its board file the device must still sleep, not sit awake at the REPL
        log("error", "board.py: %s" % e)
        deep = _can_deep_sleep()
    console = _console(board)
    if console == lock.PIN:
        return                  # the operator asked for the REPL: no wake this boot
    locked = console == lock.LOCKED
    if deep and not locked:
        _boot_window()
    n = 0
    while True:
        n += 1
        try:
            sleep_s = asyncio.run(Cycle().run())
        except Exception as e:       # a cycle that could not even start
            log("error", "%s: %s" % (type(e).__name__, e))
            sleep_s = 60
        if sleep_s is None:
            if not locked:
                return
            sleep_s = _LOCKED_STOP_S    # never back to a REPL: try again later
        try:
            cfg = config_mod.load()
            deep = bool(cfg.get("deep_sleep", getattr(load_board(), "DEEP_SLEEP", False)))
        except Exception:
            pass
        if deep:
            log("sleep", "deep %ds" % sleep_s)
            import machine
            machine.deepsleep(int(sleep_s * 1000))
        if interval is not None:
            sleep_s = float(interval)
        if locked:
            _power_down(sleep_s)
        if n >= cycles:
            return
        log("sleep", "%ss" % sleep_s)
        _reset_between_cycles()
        time.sleep(sleep_s)


_LOCKED_STOP_S = 3600


def _console(board):
    """device.lock's decision for this boot, with its lines: the unlock window after a
    reset of a locked device, and the outcome when it is not simply open."""
    after_reset = _after_reset()
    if after_reset and lock.configured():
        log("boot", "console locked: hold pin %d (BOOT) within %d s to open the REPL"
            % (getattr(board, "UNLOCK_PIN", 0), lock.UNLOCK_WINDOW_S))
    state = lock.decide(board, after_reset)
    if state == lock.PIN:
        log("lock", "open: the unlock pin is held: secrets erased, REPL on, no wake; "
            "provision again")
    elif state == lock.LOCKED:
        log("lock", "console locked: no REPL")
    return state


def _after_reset():
    """A power-on or reset, not a deep-sleep wake (False where the port cannot tell)."""
    try:
        import machine
        return machine.reset_cause() != machine.DEEPSLEEP_RESET
    except (ImportError, AttributeError):
        return False


def _power_down(sleep_s):
    # a locked device where there is no deep sleep (the unix port): the sleep, then the
    # process ends, RAM lost and no REPL, as an ESP32's deep sleep; `airshake device sim`
    # starts it again, the next wake
    log("sleep", "deep %ds" % sleep_s)
    time.sleep(sleep_s)
    sys.exit(0)


def _can_deep_sleep():
    try:
        import machine
    except ImportError:
        return False
    return hasattr(machine, "deepsleep")


def _boot_window():
    # after a power-on or reset (not a deep-sleep wake), leave the host tools a moment to
    # interrupt (mpremote sends Ctrl-C) before an open device goes to deep sleep
    if not _after_reset():
        return
    log("boot", "Ctrl-C within 3 s to stay awake")
    time.sleep(3)
