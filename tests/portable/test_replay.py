# B's m1 replay cache (PROTOCOL.md §8.5): once per key until expiry, bounded, evicting
# the entry nearest expiry first.
from airshake.replay import ReplayCache


def test_a_key_is_accepted_once_until_it_expires():
    cache = ReplayCache(10)
    assert cache.add(b"m1", 100, 0)
    assert not cache.add(b"m1", 150, 50)
    assert not cache.add(b"m1", 250, 100)        # valid through its expiry at 100
    assert cache.add(b"m1", 250, 101)            # expired: new again


def test_expired_entries_leave_and_capacity_evicts_nearest_expiry_first():
    cache = ReplayCache(3)
    for i, expires in enumerate((30, 10, 20)):
        assert cache.add(bytes([i]), expires, 0)
    assert cache.add(b"new", 40, 0)              # full: evicts key 1 (expires at 10)
    assert cache.evicted == 1 and len(cache) == 3
    assert cache.add(bytes([1]), 50, 0)          # key 1 was forgotten
    assert not cache.add(bytes([0]), 60, 5)      # key 0 (30) is still remembered
    assert cache.add(b"late", 90, 35)            # at 35, keys 0, 2 and "new"... expire
    assert len(cache) <= 3


def test_many_keys_stay_within_capacity():
    cache = ReplayCache(1000)
    for i in range(5000):
        assert cache.add(i.to_bytes(4, "big"), 10**6 + i, 0)
    assert len(cache) == 1000 and cache.evicted == 4000
    assert not cache.add((4999).to_bytes(4, "big"), 10**7, 1)
