"""Readings are not lost (device.outbox): the real firmware on the MicroPython binary keeps
every reading B has not acknowledged in airshake-data/outbox.bin and resends them in
order, across B outages, lost acknowledgements, and the device process killed at any
moment (a power cut). B stores each (ID_A, n) once (host_server.server_b.sink); `sink`
below is that view of what reached B, so "exactly once, in order" is checked as B's
store would hold it, and the raw arrivals show the resends."""
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from testkit.device_server import MICROPYTHON, Device, TestServerB, lines
from host_server.server_b.sink import reading_number


def sink(server):
    """The reading numbers as B's store keeps them: the first arrival of each n."""
    seen = []
    for _, data in server.received:
        n = reading_number(data)
        if n is not None and n not in seen:
            seen.append(n)
    return seen


def arrivals(server):
    return [reading_number(data) for _, data in server.received]


def queued(dev):
    """The device's outbox, decoded the way device.outbox writes it."""
    path = dev.path("outbox.bin")
    if not os.path.exists(path):
        return []
    data = dev.read("outbox.bin")
    body, items, i = data[:-4], [], 4
    assert body[:4] == b"AOB1"
    while i < len(body):
        n = int.from_bytes(body[i:i + 2], "big")
        items.append(reading_number(body[i + 2:i + 2 + n]))
        i += 2 + n
    return items


class Outage:
    """A drop hook: while `up` is False B hears nothing; while `acks` is False B hears
    but its answers are lost on the way down."""

    def __init__(self):
        self.up = True
        self.acks = True

    def __call__(self, direction, frame):
        return not self.up if direction == "up" else not self.acks


@pytest.fixture
def outage():
    return Outage()


@pytest.fixture
def server(outage):
    with TestServerB(drop=outage) as b:
        yield b


def fast(server, tmp_path, **kw):
    cfg = dict(max_records=100, reply_timeout_s=0.3, rto_s=0.1, retries=1)
    cfg.update(kw)
    return Device(tmp_path / "dev", server, **cfg)


def test_b_down_for_several_wakes_then_every_reading_arrives_once_in_order(
        tmp_path, server, outage):
    dev = fast(server, tmp_path)
    dev.run()                                  # handshake: n=1 in m3, session saved
    outage.up = False
    for _ in range(4):                         # records unanswered, then handshakes fail
        out = dev.run()
        assert not lines(out, "reply")
    assert queued(dev) == [2, 3, 4, 5]
    outage.up = True
    out = dev.run()
    assert lines(out, "outbox")[0] == "queued n=5"
    assert sink(server) == [1, 2, 3, 4, 5, 6]
    assert arrivals(server) == [1, 2, 3, 4, 5, 6]   # nothing reached B twice
    assert queued(dev) == []
    dev.run()
    assert sink(server) == list(range(1, 8)) and queued(dev) == []
    dev.assert_no_secret_printed()


def test_lost_acknowledgements_resend_and_b_stores_each_reading_once(tmp_path, server,
                                                                      outage):
    dev = fast(server, tmp_path, max_missed=5)
    dev.run()
    outage.acks = False                        # B hears every record; its acks are lost
    dev.run()
    dev.run()
    assert queued(dev) == [2, 3]
    assert arrivals(server) == [1, 2, 2]       # wake 3 resent n=2 first, then waited
    outage.acks = True
    dev.run()
    assert arrivals(server) == [1, 2, 2, 2, 3, 4]
    assert sink(server) == [1, 2, 3, 4] and queued(dev) == []


def test_session_used_up_with_readings_left_handshakes_in_the_same_wake(tmp_path, server,
                                                                         outage):
    dev = fast(server, tmp_path, max_records=2)
    dev.run()
    outage.up = False
    dev.run()                                  # record 0 unanswered
    outage.up = True
    out = dev.run()                            # record 1 resends n=2, session used up
    assert lines(out, "record") and lines(out, "handshake") and lines(out, "confirmed")
    assert sink(server) == [1, 2, 3] and queued(dev) == []


def test_full_outbox_drops_the_oldest_and_says_so(tmp_path, server, outage):
    dev = fast(server, tmp_path, outbox_max=3)
    dev.run()
    outage.up = False
    outs = [dev.run() for _ in range(5)]       # n=2..6; only the newest 3 kept
    assert [lines(o, "outbox") for o in outs][-1] == ["full dropped n=1", "queued n=3"]
    assert queued(dev) == [4, 5, 6]
    assert dev.state()["outbox_dropped"] == 2
    outage.up = True
    dev.run()                                  # n=7 joins a full queue: n=4 goes
    assert sink(server) == [1, 5, 6, 7] and queued(dev) == []
    assert dev.state()["outbox_dropped"] == 3


def test_per_wake_budget_bounds_the_airtime_of_a_backlog(tmp_path, server, outage):
    dev = fast(server, tmp_path, outbox_per_wake=2)
    dev.run()
    outage.up = False
    for _ in range(4):
        dev.run()
    outage.up = True
    out = dev.run()                            # 5 queued, 2 sent
    assert len(lines(out, "reply")) == 2 and queued(dev) == [4, 5, 6]
    for left in ([6, 7], [8], []):             # two a wake, one new a wake
        dev.run()
        assert queued(dev) == left
    assert sink(server) == list(range(1, 10))


def test_torn_write_leaves_the_previous_queue(tmp_path, server, outage):
    """A power cut in the middle of writing the queue leaves a partial temp file beside
    the whole previous one: the next wake uses the previous queue."""
    dev = fast(server, tmp_path)
    dev.run()
    outage.up = False
    dev.run()
    dev.run()
    whole = dev.read("outbox.bin")
    with open(dev.path("outbox.bin.tmp"), "wb") as f:
        f.write(whole[:len(whole) // 2])      # what an interrupted write leaves
    outage.up = True
    out = dev.run()
    assert not lines(out, "error")
    assert sink(server) == [1, 2, 3, 4] and queued(dev) == []


def test_damaged_queue_is_reported_and_the_device_carries_on(tmp_path, server, outage):
    dev = fast(server, tmp_path)
    dev.run()
    outage.up = False
    dev.run()
    data = bytearray(dev.read("outbox.bin"))
    data[5] ^= 0x55
    with open(dev.path("outbox.bin"), "wb") as f:
        f.write(bytes(data))
    outage.up = True
    out = dev.run()
    assert any("outbox.bin damaged" in ln for ln in lines(out, "error"))
    assert sink(server) == [1, 3] and queued(dev) == []   # n=2 was in the damaged file


def test_killed_between_send_and_ack_the_reading_is_resent(tmp_path, outage):
    """B stores the record; the device is killed (power cut) before B's ack reaches it.
    The next wake resends that reading; B's store keeps it once."""
    victim = []

    def drop(direction, frame):
        if direction == "down" and victim and victim[0].poll() is None and \
                len(arrivals(b)) == 2:
            victim[0].send_signal(signal.SIGKILL)
            victim[0].wait()
            return True
        return outage(direction, frame)

    with TestServerB(drop=drop) as b:
        dev = fast(b, tmp_path)
        dev.run()
        proc = subprocess.Popen([MICROPYTHON, "main.py"], cwd=dev.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim.append(proc)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert queued(dev) == [2]                  # not acknowledged: still queued
        out = dev.run()
        assert lines(out, "outbox") == ["queued n=2"]
    assert arrivals(b) == [1, 2, 2, 3] and sink(b) == [1, 2, 3] and queued(dev) == []


def test_power_cut_at_any_moment_loses_no_reading(tmp_path, outage):
    """The device process is killed at a random moment of 24 wakes (seeded, scaled to how
    long a wake takes here): in the middle of writing a file, between send and ack, or
    not at all (about a quarter of them). Then B is reached until the
    queue is empty: B's store holds every reading from 1 to the last, once, in order."""
    rng = random.Random(12)
    with TestServerB(drop=outage) as b:
        dev = fast(b, tmp_path)
        dev.run()
        t0 = time.monotonic()
        dev.run()
        wake = time.monotonic() - t0               # a whole record wake, on this machine
        killed = 0
        for i in range(24):
            outage.up = rng.random() > 0.2
            proc = subprocess.Popen([MICROPYTHON, "main.py"], cwd=dev.root,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            timer = threading.Timer(rng.uniform(0.0, 1.3 * wake),
                                    lambda p=proc: p.poll() is None and p.kill())
            timer.start()
            killed += proc.wait(60) == -signal.SIGKILL
            timer.cancel()
        outage.up = True
        for _ in range(6):
            dev.run()
            if not queued(dev):
                break
        last = max(sink(b))
        assert sink(b) == list(range(1, last + 1))
        assert queued(dev) == [] and dev.state()["counter"] == last >= 3
        assert killed >= 3, killed
