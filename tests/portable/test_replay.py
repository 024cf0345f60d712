# B's 0-RTT replay cache (PROTOCOL.md §8.5): once per key until expiry, bounded without
# ever evicting an unexpired entry: a full cache answers FULL and B refuses the 0-RTT data.
from airshake.replay import FRESH, FULL, SEEN, ReplayCache


def test_a_key_is_accepted_once_until_it_expires():
    cache = ReplayCache(10)
    assert cache.add(b"m1", 100, 0) == FRESH
    assert cache.add(b"m1", 150, 50) == SEEN
    assert cache.add(b"m1", 250, 100) == SEEN    # valid through its expiry at 100
    assert cache.add(b"m1", 250, 101) == FRESH   # expired: new again


def test_a_full_cache_never_forgets_an_unexpired_entry():
    cache = ReplayCache(3)
    for i, expires in enumerate((30, 10, 20)):
        assert cache.add(bytes([i]), expires, 0) == FRESH
    assert cache.add(b"new", 40, 0) == FULL      # full: nothing evicted, nothing recorded
    assert cache.full == 1 and len(cache) == 3
    for i in range(3):                           # every entry is still a replay
        assert cache.add(bytes([i]), 50, 5) == SEEN
    assert cache.add(b"new", 40, 11) == FRESH    # key 1 expired at 10: room again
    assert cache.add(bytes([1]), 50, 11) == FULL
    assert cache.add(bytes([0]), 60, 12) == SEEN


def test_many_keys_stay_within_capacity_and_the_first_are_still_refused():
    cache = ReplayCache(1000)
    for i in range(5000):
        expected = FRESH if i < 1000 else FULL
        assert cache.add(i.to_bytes(4, "big"), 10**6 + i, 0) == expected
    assert len(cache) == 1000 and cache.full == 4000
    assert cache.add((0).to_bytes(4, "big"), 10**7, 1) == SEEN
