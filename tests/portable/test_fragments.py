# The fragmentation layer (PROTOCOL.md §3.6): split and reassemble, repeat only what was
# lost, bounded memory, and a whole handshake by value over 51-byte frames with losses.
from testkit.support import backends, raises_
from testkit.hs_support import Pair
from airshake import fragments
from airshake.errors import DecodeError, UsageError
from airshake.fragments import FragmentLink, split, FRAGMENT_OVERHEAD
from airshake.initiator import CONFIRMED


def test_small_messages_pass_unchanged_and_large_ones_split_to_mtu():
    assert split(b"x" * 51, 51) == [b"x" * 51]
    frames = split(bytes(range(256)) * 2, 51)
    assert all(len(f) <= 51 for f in frames)
    assert len(frames) == (512 + 46) // 47
    link = FragmentLink(51)
    out = None
    for f in reversed(frames):                  # any order
        out, _ = link.incoming(f, 0)
    assert out == bytes(range(256)) * 2


def test_duplicate_fragments_are_ignored():
    link = FragmentLink(51)
    frames = split(b"a" * 100, 51)
    assert link.incoming(frames[0], 0) == (None, [])
    assert link.incoming(frames[0], 0) == (None, [])
    assert link.incoming(frames[1], 0) == (None, [])
    assert link.incoming(frames[2], 0)[0] == b"a" * 100


def test_ack_makes_the_sender_repeat_only_missing_fragments():
    sender, receiver = FragmentLink(30), FragmentLink(30)
    message = bytes(range(200))
    frames = sender.outgoing(message)
    lost = {1, 4}
    for i, f in enumerate(frames):
        if i not in lost:
            receiver.incoming(f, 0)
    acks = receiver.acks()
    assert len(acks) == 1
    _, resend = sender.incoming(acks[0], 0)
    assert resend == [frames[1], frames[4]]
    result = None
    for f in resend:
        result, _ = receiver.incoming(f, 0)
    assert result == message and receiver.acks() == []


def test_bounds_refuse_oversize_and_evict_old_partials():
    link = FragmentLink(51, max_message=200, max_pending=2)
    big = split(bytes(1000), 51)
    raises_(DecodeError, link.incoming, big[0], 0)
    for i, n in enumerate((100, 101, 102)):
        link.incoming(split(bytes([i]) * n, 51)[0], i)
    assert len(link.acks()) == 2                # the oldest partial was evicted
    raises_(UsageError, split, bytes(300), 4)
    raises_(UsageError, split, bytes(255 * 47 + 1), 51)


def test_fragment_frames_have_the_documented_layout():
    frames = split(bytes(100), 51)
    head, tag, index, count = frames[1][:FRAGMENT_OVERHEAD]
    assert head == 0xA0 and index == 1 and count == 3
    assert tag == fragments.message_tag(bytes(100))


def test_handshake_by_value_over_51_byte_frames_with_loss():
    """m2 with C_B by value (230 bytes: C_B as C509, PROTOCOL.md §3.2) crosses a 51-byte
    link that loses fragments; A asks for the missing ones with an ack, and the handshake
    completes."""
    backend = backends()[0]
    pair = Pair(backend, 0)
    a_link, b_link = FragmentLink(51), FragmentLink(51)
    pair.ini.connect(pair.t)
    m1 = pair.ini.datagrams_to_send(pair.t)[0]
    assert len(a_link.outgoing(m1)) == 1        # m1 fits one frame
    res = pair.responder_for(m1)
    res.receive(m1, pair.t)
    pair.b_drain()
    m2 = res.datagrams_to_send(pair.t)[0]
    assert len(m2) == 230
    frames = b_link.outgoing(m2)
    assert len(frames) == 5                     # ceil(230 / 47)
    for i, f in enumerate(frames):
        if i % 3 != 1:                          # lose fragments 1 and 4
            a_link.incoming(f, pair.t)
    (ack,) = a_link.acks()
    _, resend = b_link.incoming(ack, pair.t)
    assert len(resend) == 2
    for f in resend:
        whole, _ = a_link.incoming(f, pair.t)
    pair.ini.receive(whole, pair.t)
    pair.a_to_b()
    pair.b_to_a()
    assert pair.ini.state == CONFIRMED


def test_partial_messages_are_reported_and_expire():
    link = FragmentLink(51)
    frames = split(bytes(120), 51)
    link.incoming(frames[0], 10)
    assert link.has_partial()
    link.expire(15, 30)
    assert link.has_partial()
    link.expire(41, 30)
    assert not link.has_partial() and link.acks() == []


def test_resend_limit_repeats_only_that_many_missing_fragments_per_ack():
    sender, receiver = FragmentLink(30, resend_limit=1), FragmentLink(30)
    frames = sender.outgoing(bytes(range(150)))
    receiver.incoming(frames[0], 0)
    _, resend = sender.incoming(receiver.acks()[0], 0)
    assert resend == [frames[1]]
