# B's SessionTable (issue 16 item 5): idle sessions beyond the hot few are frozen into
# bytes and thawed on use with their whole state (sequence numbers, replay window,
# epochs, address, counters), a held session is never frozen (so no (key, seq) pair is
# sealed twice), sweep/drop_id/eviction work on frozen sessions without thawing them,
# colliding SIDs stay apart, and a held session costs well under 1 KB.
import os
import time
import tracemalloc

import pytest

from airshake.crypto import load_backend
from airshake.errors import ReplayError
from airshake.session import ROLE_INITIATOR, ROLE_RESPONDER, Session
from host_server.server_b.tables import Conn, SessionTable

BACKEND = load_backend("pyca")


def _pair(sid=None, created=None, addr=("192.0.2.7", 41000), id_a=None):
    """(A's session, B's Conn) sharing secrets, as a completed handshake leaves them."""
    sid = sid or os.urandom(4)
    ab, ba = os.urandom(32), os.urandom(32)
    created = time.time() if created is None else created
    a = Session(BACKEND, ROLE_INITIATOR, 0, sid, ab, ba, created)
    b = Session(BACKEND, ROLE_RESPONDER, 0, sid, ba, ab, created)
    return a, Conn(b, id_a or os.urandom(8), addr, created)


def _add(table, conn):
    """As delivery does: add (held), B's first record, release."""
    table.add(conn)
    first = conn.session.seal(b"")
    table.release(conn)
    return first


def _frozen(table):
    return sum(1 for v in table._by_sid.values()
               for e in (v if isinstance(v, list) else [v]) if isinstance(e, bytes))


def test_idle_sessions_beyond_the_hot_limit_are_frozen_and_thaw_with_their_state():
    table = SessionTable(100, hot_limit=2)
    pairs = [_pair() for _ in range(5)]
    for a, conn in pairs:
        a.open(_add(table, conn))
    assert len(table) == 5 and _frozen(table) == 3
    a, conn = pairs[0]
    record = a.seal(b"reading")
    (thawed,) = table.get(conn.session.sid)
    assert thawed is not conn and thawed.id_a == conn.id_a and thawed.addr == conn.addr
    assert thawed.session.open(record) == (0, b"reading")
    thawed.records += 1
    # B's next seal continues after its first record (seq 0): seq 1, never 0 again
    assert a.open(thawed.session.seal(b"reply"))[0] == 1
    for _ in range(3):                        # frozen and thawed again: the same state
        _add(table, _pair()[1])
    assert _frozen(table) >= 3
    (again,) = table.get(conn.session.sid)
    assert again is not thawed and again.records == 1
    with pytest.raises(ReplayError):          # the replay window survived the freeze
        again.session.open(record)
    assert a.open(again.session.seal(b"next"))[0] == 2


def test_a_held_session_is_never_frozen():
    table = SessionTable(100, hot_limit=0)
    a, conn = _pair()
    table.add(conn)                           # held until B's first record is out
    _add(table, _pair()[1])
    assert table.get(conn.session.sid)[0] is conn
    a.open(conn.session.seal(b""))
    table.release(conn)
    (live,) = table.get(conn.session.sid)     # thawed from the frozen bytes
    assert live is not conn
    table.hold(live)                          # a record's reply is awaited
    for _ in range(3):
        _add(table, _pair()[1])
    assert table.get(conn.session.sid)[0] is live
    a.open(live.session.seal(b"reply"))
    table.release(live)
    (later,) = table.get(conn.session.sid)
    assert later is not live and a.open(later.session.seal(b"x"))[0] == 2


def test_sweep_drop_id_and_eviction_reach_frozen_sessions():
    table = SessionTable(4, hot_limit=0)
    old = _pair(created=time.time() - 8 * 86400)[1]
    device = os.urandom(8)
    mine = [_pair(id_a=device)[1] for _ in range(2)]
    for conn in [old] + mine:
        _add(table, conn)
    assert _frozen(table) == 3
    assert table.sweep(time.time()) == 1 and table.get(old.session.sid) == []
    assert table.drop_id(device) == 2 and len(table) == 0
    conns = [_pair()[1] for _ in range(6)]
    evicted = 0
    for c in conns:                           # least recently used first, frozen or not
        evicted += table.add(c)
        c.session.seal(b"")
        table.release(c)
    assert evicted == 2 and len(table) == 4
    assert table.get(conns[0].session.sid) == [] and table.get(conns[1].session.sid) == []
    assert table.get(conns[5].session.sid)[0].id_a == conns[5].id_a


def test_colliding_sids_stay_apart_frozen_or_live():
    table = SessionTable(10, hot_limit=0)
    sid = os.urandom(4)
    c1, c2 = _pair(sid)[1], _pair(sid)[1]
    _add(table, c1)
    _add(table, c2)
    got = table.get(sid)
    assert len(got) == 2 and {c.id_a for c in got} == {c1.id_a, c2.id_a}
    table.remove(got[0])
    assert [c.id_a for c in table.get(sid)] == [got[1].id_a] and len(table) == 1


@pytest.mark.parametrize("addr", [("2001:db8::5", 5683, 0, 0), ("lorawan:0011223344556677", 7),
                                  ("127.0.0.1", 1)])
def test_addresses_survive_the_freeze(addr):
    table = SessionTable(10, hot_limit=0)
    _a, conn = _pair(addr=addr)
    _add(table, conn)
    assert _frozen(table) == 1
    assert table.get(conn.session.sid)[0].addr == addr


def test_an_address_of_another_shape_keeps_its_session_live():
    table = SessionTable(10, hot_limit=0)
    _a, conn = _pair(addr=("127.0.0.1", "not a port"))
    _add(table, conn)
    assert _frozen(table) == 0 and table.get(conn.session.sid)[0] is conn


@pytest.mark.soak
def test_a_held_session_costs_well_under_1_kb():
    n = 5000
    table = SessionTable(n)
    made = [(os.urandom(4), os.urandom(32), os.urandom(32), os.urandom(8),
             ("10.0.%d.%d" % (i >> 8, i & 255), 40000)) for i in range(n)]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for sid, send, recv, id_a, addr in made:
        session = Session(BACKEND, ROLE_RESPONDER, 0, sid, send, recv, time.time())
        _add(table, Conn(session, id_a, addr, time.time()))
    per = (tracemalloc.get_traced_memory()[0] - base) / n
    tracemalloc.stop()
    assert per < 1024 / 2, per               # measured: about 300 B
