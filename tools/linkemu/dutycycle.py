# airshake_tools.linkemu.dutycycle: the three ways a transmitter's duty cycle is applied to
# one sub-band, as budgets the link model asks "how long until a frame of this airtime
# may start?" (wait) and tells "a frame started" (record). Time is float seconds on the
# model's clock; airtime in seconds; dc the sub-band's duty cycle (0.01 = 1 %).
#
#   per-frame    after a frame of airtime T the sub-band stays closed T * (1/dc - 1):
#                LoRaMac-node before 4.5 ("time-off"), and RAK/Semtech AT modems built
#                on it. The strictest reading; the link model's rule until now.
#   etsi-hour    ETSI EN 300 220-2 (4.3.3.1 duty cycle): at most dc of one hour on the
#                air. A frame may start at t when the airtime of the frames in the hour
#                ending at its own end (t + T), plus T, stays within dc * 3600 s (36 s at
#                1 %). A frame that overlaps the window's start is counted whole (the
#                conservative side of the rule). A burst is legal while the hour lasts.
#   lmn-credits  LoRaMac-node from 4.5 (RegionCommon.c: UpdateTimeCredits,
#                RegionCommonSetBandTxDone, RegionCommonUpdateBandTimeOff): time credits
#                start full at DUTY_CYCLE_TIME_PERIOD (3600 s), grow one second per second
#                up to that, and a frame costs T / dc of them; it goes when the band holds
#                its cost (LoRaMac-node compares with >, here >=: equal at any real clock
#                resolution). The first hour after boot allows 36 s of airtime at once.
#
# The device's own scheduler applies the same three in firmware/lib/radios/airtime.py
# (integer milliseconds, MicroPython); tests/host/test_dutycycle.py runs both on the same
# schedules and checks they agree.
from __future__ import annotations

from collections import deque

PER_FRAME = "per-frame"
ETSI_HOUR = "etsi-hour"
LMN_CREDITS = "lmn-credits"
POLICIES = (PER_FRAME, ETSI_HOUR, LMN_CREDITS)
PERIOD = 3600.0          # the observation period of both hourly rules, seconds
_EPS = 1e-9              # float slack: a budget that fits exactly still fits


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError("unknown duty-cycle policy %r; choose one of: %s"
                         % (policy, ", ".join(POLICIES)))
    return policy


def silence_after(airtime: float, duty: float) -> float:
    """How long a sub-band stays closed after a frame of this airtime (per-frame rule):
    T * (1/dc - 1)."""
    return airtime * (1.0 / duty - 1.0)


class PerFrame:
    def __init__(self, duty: float, period: float = PERIOD) -> None:
        self.duty = duty
        self.free_at = float("-inf")

    def wait(self, now: float, airtime: float = 0.0) -> float:
        return max(0.0, self.free_at - now)

    def record(self, start: float, airtime: float) -> None:
        self.free_at = max(self.free_at, start + airtime / self.duty)


class HourWindow:
    def __init__(self, duty: float, period: float = PERIOD) -> None:
        self.duty = duty
        self.period = period
        self.budget = duty * period
        self._frames: deque[tuple[float, float]] = deque()     # (end, airtime), in order

    def _fits(self, airtime: float) -> None:
        if airtime > self.budget + _EPS:
            raise ValueError("a frame of %.3f s on the air exceeds the sub-band's hourly "
                             "budget of %.3f s" % (airtime, self.budget))

    def wait(self, now: float, airtime: float = 0.0) -> float:
        self._fits(airtime)
        horizon = now + airtime - self.period     # frames ending after this still count
        counted = [(e, a) for e, a in self._frames if e > horizon]
        used = sum(a for _, a in counted)
        t = now
        for end, spent in counted:                # oldest first: wait for it to leave
            if used + airtime <= self.budget + _EPS:
                break
            t = end + self.period - airtime
            used -= spent
        return max(0.0, t - now)

    def record(self, start: float, airtime: float) -> None:
        self._frames.append((start + airtime, airtime))
        while self._frames and self._frames[0][0] <= start - self.period:
            self._frames.popleft()


class TimeCredits:
    def __init__(self, duty: float, period: float = PERIOD) -> None:
        self.duty = duty
        self.max_credits = period
        self._credits = period                    # full at boot (LastBandUpdateTime == 0)
        self._at = float("-inf")

    def credits(self, now: float) -> float:
        if now <= self._at:
            return self._credits
        return min(self.max_credits, self._credits + (now - self._at))

    def wait(self, now: float, airtime: float = 0.0) -> float:
        cost = airtime / self.duty
        if cost > self.max_credits + _EPS:
            raise ValueError("a frame of %.3f s on the air costs %.0f s of credits; the "
                             "band holds at most %.0f" % (airtime, cost, self.max_credits))
        return max(0.0, cost - self.credits(now))

    def record(self, start: float, airtime: float) -> None:
        have = self.credits(start)
        self._credits = max(0.0, have - airtime / self.duty)
        self._at = max(self._at, start)


_CLASSES: dict[str, type[PerFrame] | type[HourWindow] | type[TimeCredits]] = {
    PER_FRAME: PerFrame, ETSI_HOUR: HourWindow, LMN_CREDITS: TimeCredits}


def budget(policy: str, duty: float, period: float = PERIOD) -> PerFrame | HourWindow | TimeCredits:
    """A fresh budget of one transmitter in one sub-band under the policy."""
    if not 0.0 < duty <= 1.0:
        raise ValueError("duty cycle must be in (0, 1], not %r" % (duty,))
    return _CLASSES[check_policy(policy)](duty, period)
