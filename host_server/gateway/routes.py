# host_server.gateway.routes: which device a frame belongs to, on the bridge between LoRa
# gateways and B (docs/LORA_GATEWAY.md "How answers find the device").
#
# B tells devices apart by what the core puts on the wire: ID_A in m1, the 5-bit hint in
# m3 (among the handshakes whose m2 went to the m3's source address), the SID in records
# (PROTOCOL.md §3). So the bridge gives each device its own UDP socket towards B, a
# *flow*: B sees one source port per device, answers each device on its own flow, and
# the bridge sends what arrives on a flow through the gateway that heard that flow's
# device last. Uplinks are put on flows by the same visible fields:
#   m1              by ID_A (a new flow for a new ID)
#   m3              the flows B sent an m2 with this hint to (learnt from B's m2s, and
#                   from the first fragment of a fragmented m2); several on a hint
#                   collision (B trial-decrypts; the others drop it)
#   record          by SID (learnt from B's records and the device's own)
#   fragment ack    by the tag of B's fragments it acknowledges
#   anything else   (unknown SID after a bridge restart, a device's own fragments, an
#                   m3 whose m2 the bridge never saw) the shared flow: B still routes
#                   it by hint/SID and its answer comes back on the shared flow
# A device's radio drops any frame that is not for it (the core refuses it), so a
# downlink heard by other devices near the same gateway costs airtime, nothing else.
# Tables are bounded: the oldest flow is closed first (its device's next m1 opens a new
# one; its records then travel on the shared flow until B's answer teaches the SID).
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from airshake import codec
from airshake import fragments
from airshake.errors import AirshakeError

KEY_LEN = codec.KEY_LEN


@dataclass
class Heard:
    """One gateway's reception of an uplink (a frame may be heard by several)."""
    eui: bytes
    tmst: int
    rssi: float
    lsnr: float

    def better_than(self, other: "Heard") -> bool:
        return (self.lsnr, self.rssi) > (other.lsnr, other.rssi)


@dataclass(eq=False)
class Flow:
    """One device's path: a socket towards B and where its device was heard last."""
    name: str
    send: Callable[[bytes], None]          # to B
    close: Callable[[], None]
    heard: list[Heard] = field(default_factory=list)   # the last uplink's, best first
    heard_at: float = 0.0                  # when the first copy of it arrived
    downlinks: int = 0                     # answers sent since that uplink
    uplinks: int = 0
    outbox: list[bytes] = field(default_factory=list)  # B's answers held for collection
    closed: bool = False

    def hear(self, h: Heard, new_uplink: bool, now: float = 0.0) -> None:
        """Record a gateway that heard this flow's last uplink (new_uplink: it is the
        first copy of a new frame, so the earlier receptions no longer count)."""
        if new_uplink:
            self.heard = [h]
            self.heard_at = now
            self.downlinks = 0
            self.uplinks += 1
            return
        self.heard = [x for x in self.heard if x.eui != h.eui] + [h]
        self.heard.sort(key=lambda x: (x.lsnr, x.rssi), reverse=True)


class Routes:
    def __init__(self, open_flow: Callable[[str], Flow], id_len: int = 8,
                 max_flows: int = 256, hint_ttl: float = 600.0, max_keys: int = 4096):
        self.open_flow = open_flow
        self.id_len = id_len
        self.max_flows = max_flows
        self.hint_ttl = hint_ttl
        self.max_keys = max_keys
        self.shared = open_flow("shared")
        self.by_id: OrderedDict[bytes, Flow] = OrderedDict()
        self.by_sid: OrderedDict[bytes, Flow] = OrderedDict()
        self.by_tag: OrderedDict[int, Flow] = OrderedDict()
        self.by_hint: dict[int, list[tuple[Flow, float]]] = {}

    def flows(self) -> list[Flow]:
        return [self.shared, *self.by_id.values()]

    def close(self) -> None:
        for f in self.flows():
            f.closed = True
            f.close()
        self.by_id.clear()

    # -- uplinks ------------------------------------------------------------------------
    def for_uplink(self, frame: bytes, now: float) -> list[Flow]:
        """The flows an uplink frame goes to B on (one, or several on a hint collision)."""
        try:
            kind = codec.message_type(frame)
        except AirshakeError:
            return [self.shared]
        if kind == codec.TYPE_M1:
            return [self._flow_of_id(frame)]
        if kind == codec.TYPE_M3:
            live = [f for f, at in self.by_hint.get(codec.m3_hint(frame), [])
                    if not f.closed and now - at <= self.hint_ttl]
            return live or [self.shared]
        if kind == codec.TYPE_RECORD:
            sid = self._sid(frame)
            flow = self.by_sid.get(sid) if sid is not None else None
            return [flow if flow is not None and not flow.closed else self.shared]
        if kind == codec.TYPE_FRAGMENT_ACK:
            try:
                tag = fragments.decode_ack(frame)[0]
            except AirshakeError:
                return [self.shared]
            flow = self.by_tag.get(tag)
            return [flow if flow is not None and not flow.closed else self.shared]
        return [self.shared]

    def _flow_of_id(self, m1: bytes) -> Flow:
        try:
            id_a = codec.decode_m1(m1, self.id_len).id_a
        except AirshakeError:
            return self.shared            # B refuses it (version, suite) on the shared flow
        flow = self.by_id.get(id_a)
        if flow is not None:
            self.by_id.move_to_end(id_a)
            return flow
        flow = self.by_id[id_a] = self.open_flow(id_a.hex())
        while len(self.by_id) > self.max_flows:
            _, old = self.by_id.popitem(last=False)
            old.closed = True
            old.close()
        return flow

    @staticmethod
    def _sid(record: bytes) -> bytes | None:
        try:
            return codec.decode_record(record)[1]
        except AirshakeError:
            return None

    # -- what B's answers teach ---------------------------------------------------------
    def learn(self, flow: Flow, frame: bytes, now: float) -> None:
        """Note the hint, SID or fragment tag of a datagram B sent on flow."""
        try:
            kind = codec.message_type(frame)
        except AirshakeError:
            return
        if kind == codec.TYPE_M2 and len(frame) > KEY_LEN:
            self._learn_hint(flow, codec.hint_of(frame[1:1 + KEY_LEN]), now)
        elif kind == codec.TYPE_RECORD:
            self.learn_sid(flow, frame)
        elif kind == codec.TYPE_FRAGMENT:
            try:
                tag, index, _count, payload = fragments.decode_fragment(frame)
            except AirshakeError:
                return
            _put(self.by_tag, tag, flow, self.max_keys)
            if index == 0 and len(payload) > KEY_LEN \
                    and codec.message_type(payload) == codec.TYPE_M2:
                self._learn_hint(flow, codec.hint_of(payload[1:1 + KEY_LEN]), now)

    def learn_sid(self, flow: Flow, record: bytes) -> None:
        sid = self._sid(record)
        if sid is not None and flow is not self.shared:
            _put(self.by_sid, sid, flow, self.max_keys)
        elif sid is not None:
            self.by_sid.pop(sid, None)

    def _learn_hint(self, flow: Flow, hint: int, now: float) -> None:
        entries = [(f, at) for f, at in self.by_hint.get(hint, [])
                   if f is not flow and not f.closed and now - at <= self.hint_ttl]
        self.by_hint[hint] = entries[-(self.max_keys // 32):] + [(flow, now)]


def _put(table: OrderedDict, key: object, flow: Flow, limit: int) -> None:  # type: ignore[type-arg]
    table[key] = flow
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
