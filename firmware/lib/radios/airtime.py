# radios/airtime.py: owns AirtimeBudget, the duty-cycle budget of the device's own raw-LoRa
# transmitter in one sub-band, and time_on_air_ms(). The scheduler asks wait_ms(airtime)
# before a frame and calls record(airtime) when it goes; the budget never sleeps.
#
# Policies (the same three as the link model, tools/linkemu/dutycycle.py):
#   "per-frame"    after a frame of T ms the sub-band stays closed T * (dcycle - 1) ms
#                  (LoRaMac-node before 4.5).
#   "etsi-hour"    ETSI EN 300 220-2: at most 1/dcycle of an hour on the air. A frame may
#                  start at t when the airtime of the frames ending after t + T - 1 h, plus
#                  T, is within 3600000 / dcycle ms (36 s at 1 %); frames overlapping the
#                  hour's start count whole. A burst may go at once.
#   "lmn-credits"  LoRaMac-node from 4.5: credits start full at 1 h (3600000 ms), grow one
#                  ms per ms up to that, a frame costs T * dcycle and goes when the credits
#                  cover it.
# dcycle is the divisor of the duty cycle, as LoRaMac-node's Band_t.DCycle: 100 = 1 %
# (868.0-868.6 MHz), 1000 = 0.1 %, 10 = 10 %.
# Time: integer milliseconds from clock(), which the caller passes in: monotonic and not
# wrapping (on a board, a counter that adds time.ticks_diff(time.ticks_ms(), last)); tests
# pass a fake clock. The budget starts full at construction: a scheduler that restarts
# (deep sleep without RTC memory) must construct it at most once an hour or keep state.
# MicroPython subset: no dataclasses, no typing.

POLICIES = ("per-frame", "etsi-hour", "lmn-credits")
PERIOD_MS = 3600000


class AirtimeBudget:
    def __init__(self, clock, policy="etsi-hour", dcycle=100, period_ms=PERIOD_MS):
        if policy not in POLICIES:
            raise ValueError("unknown duty-cycle policy %r (%s)" % (policy, ", ".join(POLICIES)))
        if not isinstance(dcycle, int) or dcycle < 1:
            raise ValueError("dcycle must be a positive integer (100 = 1 %%), not %r" % (dcycle,))
        self.clock = clock
        self.policy = policy
        self.dcycle = dcycle
        self.period_ms = period_ms
        self.budget_ms = period_ms // dcycle     # etsi-hour: airtime per hour
        self._free_at = None                     # per-frame: the band opens again
        self._frames = []                        # etsi-hour: [end, airtime], oldest first
        self._credits = period_ms                # lmn-credits: full at start
        self._at = clock()

    def _check(self, airtime_ms):
        if airtime_ms < 0:
            raise ValueError("airtime must not be negative")
        if self.policy != "per-frame" and airtime_ms > self.budget_ms:
            raise ValueError("a frame of %d ms exceeds the hourly budget of %d ms"
                             % (airtime_ms, self.budget_ms))

    def _credits_at(self, now):
        if now <= self._at:
            return self._credits
        return min(self.period_ms, self._credits + (now - self._at))

    def wait_ms(self, airtime_ms):
        """Milliseconds from now until a frame of airtime_ms may start (0: now)."""
        self._check(airtime_ms)
        now = self.clock()
        if self.policy == "per-frame":
            return 0 if self._free_at is None else max(0, self._free_at - now)
        if self.policy == "lmn-credits":
            return max(0, airtime_ms * self.dcycle - self._credits_at(now))
        horizon = now + airtime_ms - self.period_ms
        used = 0
        for end, spent in self._frames:
            if end > horizon:
                used += spent
        t = now
        for end, spent in self._frames:
            if used + airtime_ms <= self.budget_ms:
                break
            if end > horizon:
                t = end + self.period_ms - airtime_ms
                used -= spent
        return max(0, t - now)

    def record(self, airtime_ms):
        """A frame of airtime_ms started now (call it as the radio starts sending)."""
        self._check(airtime_ms)
        now = self.clock()
        if self.policy == "per-frame":
            free = now + airtime_ms * self.dcycle
            if self._free_at is None or free > self._free_at:
                self._free_at = free
        elif self.policy == "lmn-credits":
            self._credits = max(0, self._credits_at(now) - airtime_ms * self.dcycle)
            if now > self._at:
                self._at = now
        else:
            frames = self._frames
            frames.append((now + airtime_ms, airtime_ms))
            while frames and frames[0][0] <= now - self.period_ms:
                frames.pop(0)

    def export(self):
        """The budget's state as a small JSON-able list, for a device that deep-sleeps
        between wakes (device.app keeps it in state.json); restore() takes it back. Times
        are the clock's, so the clock must be one that survives sleep (the RTC's)."""
        if self.policy == "per-frame":
            return [self.policy, self._free_at]
        if self.policy == "lmn-credits":
            return [self.policy, self._credits, self._at]
        return [self.policy, [list(f) for f in self._frames]]

    def restore(self, state):
        """Take back what export() gave, if it is of this policy and well formed; anything
        else is ignored (the budget stays as constructed: full). Never raises."""
        try:
            if not state or state[0] != self.policy:
                return False
            if self.policy == "per-frame":
                self._free_at = None if state[1] is None else int(state[1])
            elif self.policy == "lmn-credits":
                credits, at = int(state[1]), int(state[2])
                if 0 <= credits <= self.period_ms:
                    self._credits, self._at = credits, at
            else:
                now = self.clock()
                frames = [(int(e), int(a)) for e, a in state[1]]
                self._frames = [f for f in frames if f[0] > now - self.period_ms and f[1] >= 0]
            return True
        except (TypeError, ValueError, IndexError):
            return False

    def available_ms(self):
        """Airtime that could go on the air now in one frame (per-frame: 0 while closed,
        else unbounded, reported as the hourly budget)."""
        if self.policy == "per-frame":
            return self.budget_ms if self.wait_ms(0) == 0 else 0
        if self.policy == "lmn-credits":
            return self._credits_at(self.clock()) // self.dcycle
        now = self.clock()
        used = 0
        for end, spent in self._frames:
            if end > now - self.period_ms:
                used += spent
        return max(0, self.budget_ms - used)


def time_on_air_ms(payload_len, sf, bw_hz=125000, cr=1, preamble=8, explicit_header=True,
                   crc=True):
    """Milliseconds on the air of one LoRa frame, rounded up (Semtech AN1200.13; the
    low-data-rate optimisation on when a symbol lasts 16 ms or more, as the SX127x
    datasheet mandates)."""
    if not 0 <= payload_len <= 255:
        raise ValueError("LoRa payload must be 0..255 bytes, not %r" % (payload_len,))
    if not 6 <= sf <= 12 or cr not in (1, 2, 3, 4):
        raise ValueError("spreading factor 6..12 and coding rate 1..4, not %r, %r" % (sf, cr))
    de = 1 if (1 << sf) * 1000 >= 16 * bw_hz else 0
    num = 8 * payload_len - 4 * sf + 28 + (16 if crc else 0) - (0 if explicit_header else 20)
    den = 4 * (sf - 2 * de)
    n = 8 + max(-(-num // den) * (cr + 4), 0)
    # (preamble + 4.25 + n) symbols = (4 * preamble + 17 + 4 * n) quarter symbols
    total_us = (4 * preamble + 17 + 4 * n) * (1 << sf) * 1000000 // (4 * bw_hz)
    return -(-total_us // 1000)
