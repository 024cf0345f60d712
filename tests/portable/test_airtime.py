# radios/airtime.py on both runtimes (tests/mprun.py and pytest): the three duty-cycle
# policies on a fake millisecond clock, the ETSI hour never exceeded over a long random
# schedule, and LoRa time on air against the AN1200.13 values the link model checks.
from testkit.support import raises_
from radios.airtime import AirtimeBudget, time_on_air_ms

HOUR = 3600000


class Clock:
    def __init__(self, t=0):
        self.t = t

    def __call__(self):
        return self.t


def _lcg(seed):
    # a portable pseudo-random stream (no random module needed on the device)
    while True:
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        yield seed


def test_per_frame_closes_the_band_for_99_times_the_airtime():
    clock = Clock(10000)
    b = AirtimeBudget(clock, "per-frame")
    assert b.wait_ms(1000) == 0
    b.record(1000)                        # 10.000 s to 11.000 s
    clock.t = 11000
    assert b.wait_ms(1000) == 99000
    assert b.available_ms() == 0
    clock.t = 110000
    assert b.wait_ms(5000) == 0


def test_etsi_hour_allows_a_burst_of_36_seconds_then_waits_for_the_hour():
    clock = Clock(0)
    b = AirtimeBudget(clock, "etsi-hour")
    for _ in range(36):                   # 36 frames of 1 s back to back: legal at once
        assert b.wait_ms(1000) == 0
        b.record(1000)
        clock.t += 1000
    assert b.available_ms() == 0
    # the 37th must end no earlier than an hour after the first one ended
    assert b.wait_ms(1000) == HOUR - 36000
    assert b.wait_ms(500) == HOUR + 1000 - 500 - 36000
    clock.t = HOUR
    assert b.wait_ms(1000) == 0


def test_lmn_credits_start_full_spend_airtime_times_100_and_grow_back():
    clock = Clock(0)
    b = AirtimeBudget(clock, "lmn-credits")
    assert b.available_ms() == 36000
    b.record(30000)                       # costs 3,000,000 ms of the 3,600,000 credits
    clock.t = 30000
    assert b.available_ms() == 6300       # 630,000 credits left
    assert b.wait_ms(10000) == 1000000 - 630000
    clock.t = 30000 + 370000
    assert b.wait_ms(10000) == 0
    clock.t = 10 * HOUR                   # credits stop at one hour's worth
    assert b.available_ms() == 36000


def test_a_frame_longer_than_the_hourly_budget_is_refused():
    b = AirtimeBudget(Clock(), "etsi-hour")
    raises_(ValueError, lambda: b.wait_ms(36001))
    raises_(ValueError, lambda: AirtimeBudget(Clock(), "lmn-credits").record(40000))
    raises_(ValueError, lambda: AirtimeBudget(Clock(), "hourly"))
    raises_(ValueError, lambda: AirtimeBudget(Clock(), "etsi-hour", dcycle=0))
    raises_(ValueError, lambda: b.wait_ms(-1))


def test_etsi_hour_never_exceeds_one_percent_of_any_hour_on_a_random_schedule():
    clock = Clock(0)
    b = AirtimeBudget(clock, "etsi-hour")
    rnd = _lcg(7)
    sent = []
    for _ in range(400):
        airtime = 50 + next(rnd) % 3000
        clock.t += next(rnd) % 20000      # the application's pause between frames
        clock.t += b.wait_ms(airtime)
        assert b.wait_ms(airtime) == 0
        b.record(airtime)
        sent.append((clock.t, airtime))
        clock.t += airtime
    # every window of an hour ending at a frame's end holds at most 36 s of airtime
    for i in range(len(sent)):
        end = sent[i][0] + sent[i][1]
        used = 0
        for start, airtime in sent[:i + 1]:
            if start + airtime > end - HOUR:
                used += airtime
        assert used <= 36000, (i, used)
    assert clock.t > HOUR                 # the schedule really ran past the budget


def test_time_on_air_matches_an1200_13():
    assert time_on_air_ms(10, 7) == 42            # 41.216 ms
    assert time_on_air_ms(10, 12) == 992          # 991.232 ms, low-data-rate optimisation
    assert time_on_air_ms(46, 12) == 2302         # 2301.952 ms: airshake's m1
    assert time_on_air_ms(37, 12) == 1975         # 1974.272 ms: EDHOC's message_1
    assert time_on_air_ms(0, 7, crc=False) < time_on_air_ms(0, 7)
    raises_(ValueError, lambda: time_on_air_ms(256, 7))
    raises_(ValueError, lambda: time_on_air_ms(10, 13))


def test_a_budget_exported_and_restored_waits_as_the_original():
    """What device.app keeps in state.json across deep sleep: a restored budget answers
    wait_ms as the one it came from; a foreign or damaged state leaves a full budget."""
    for policy in ("per-frame", "etsi-hour", "lmn-credits"):
        clock = Clock(5 * HOUR)
        b = AirtimeBudget(clock, policy)
        for _ in range(30):
            b.record(1200)
            clock.t += 1500 + b.wait_ms(1200)
        state = b.export()
        again = AirtimeBudget(clock, policy)
        assert again.restore(state), policy
        for ms in (50, 1200, 9000):
            assert again.wait_ms(ms) == b.wait_ms(ms), (policy, ms)
        other = "per-frame" if policy != "per-frame" else "etsi-hour"
        for junk in (None, [], [other, None], [policy, "x", "y"], [policy, [[1]]]):
            fresh = AirtimeBudget(clock, policy)
            assert not fresh.restore(junk), (policy, junk)
            assert fresh.wait_ms(1200) == 0             # still full
