# device.clock: owns time on the device: Unix seconds from the RTC, the offset learned
# from B's authenticated time in m2 (the core's ClockSet) kept in state.json, and
# whether the clock is trusted (m1's WANT_TIME flag is set when it is not). An
# unauthenticated STALE_TIME never reaches here: the core uses it for one m1 stamp only.
# MicroPython's epoch is 2000-01-01 on some ports and 1970 on others: rtc() always
# returns Unix seconds. Within one wake, raw() is monotonic (ticks-based) so the
# handshake's timers never jump when the offset changes.
import time

# seconds from 1970-01-01 to the port's epoch (946684800 on a 2000-epoch port)
EPOCH_DELTA = 946684800 if time.gmtime(0)[0] == 2000 else 0
# an RTC before this (2025-01-01) has never been set: the device has no time
PLAUSIBLE = 1735689600


def rtc():
    return time.time() + EPOCH_DELTA


class Clock:
    def __init__(self, state):
        self.state = state
        self.offset = state.get("clock_offset", 0)
        self.synced = bool(state.get("clock_synced", False))
        self._t0 = rtc()
        self._ticks0 = time.ticks_ms()

    def raw(self):
        """RTC seconds (float), monotonic within this wake."""
        return self._t0 + time.ticks_diff(time.ticks_ms(), self._ticks0) / 1000

    def now(self):
        """Best estimate of Unix time: RTC + the offset learned from B."""
        return self.raw() + self.offset

    def trusted(self):
        return self.synced and self.now() >= PLAUSIBLE

    def adopt(self, offset):
        """B's authenticated time: the new offset from the RTC (ClockSet or an m2 without
        TIME, which says A's time was within B's slack)."""
        self.offset = offset
        self.synced = True
        self.state["clock_offset"] = offset
        self.state["clock_synced"] = True

    def commit(self):
        """Before deep sleep: on a board with a settable RTC, set it to the corrected
        time and zero the offset (the RTC keeps running in deep sleep). On the unix
        port the offset stays in state.json."""
        if abs(self.offset) < 1:
            return
        try:
            import machine
            rtc_dev = machine.RTC()
        except (ImportError, AttributeError):
            return
        t = time.gmtime(int(self.now()) - EPOCH_DELTA)
        # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
        rtc_dev.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))
        self.offset = 0
        self.state["clock_offset"] = 0
