# host_server.gateway.bridge: the GWMP bridge between LoRa gateways and server B
# (`airshake gateway`, docs/LORA_GATEWAY.md). One UDP port speaks the Semtech
# packet-forwarder protocol v2 with any number of gateways (PUSH_DATA -> PUSH_ACK,
# PULL_DATA -> PULL_ACK, PULL_RESP -> TX_ACK); B gets plain airshake datagrams, one UDP
# socket per device (host_server.gateway.routes says why and how frames are put on them).
# Rules:
#   - an uplink is forwarded only if it was received with a good CRC, as LoRa, on the
#     configured frequency and data rate; the same frame heard by several gateways
#     within dedup_s is forwarded once (the best-heard gateway is kept for the answer);
#   - B's answers go out through the gateway that heard the device's last uplink best
#     (held until collect_s after its first copy arrived, so every gateway's copy counts),
#     "imme" (default: the firmware listens from the end of its send until its timeout,
#     radios/lora.py recv) or at the uplink's tmst + rx_delay_s ("tmst", for a device
#     that opens a fixed receive window); with ipol (inverted IQ) as the devices listen;
#   - a TX_ACK with an error tries the next gateway that heard the same uplink, else the
#     frame is dropped and counted (the device's retransmission recovers it);
#   - a malformed datagram raises a typed GwmpError inside, is counted by its class and
#     logged once per gateway address and class, never answered, never fatal.
from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from airshake_tools.linkemu.lora import time_on_air
from host_server.gateway import gwmp
from host_server.gateway.routes import Flow, Heard, Routes

log = logging.getLogger("airshake.gateway")
Addr = tuple[str, int]
TX_GAP_S = 0.01           # tmst mode: between two downlinks answering one uplink
MAX_GATEWAYS = 1024       # GWMP is unauthenticated: bound what forged EUIs can cost
MAX_RECENT = 65536        # frames remembered for de-duplication


@dataclass
class RadioPlan:
    """The raw-LoRa channel the devices use (boards/*.py LORA) and the downlink settings."""
    freq_mhz: float = 868.1
    datr: str = "SF7BW125"
    codr: str = "4/5"
    powe: int = 14
    ipol: bool = True         # downlinks IQ-inverted: devices set invert_iq_rx
    rfch: int = 0
    prea: int = 8             # the boards' preamble_len
    tx_mode: str = "imme"     # "imme" or "tmst"
    rx_delay_s: float = 1.0   # tmst mode: downlink at uplink tmst + this

    def check(self) -> None:
        gwmp.datr_parts(self.datr)
        if self.codr not in ("4/5", "4/6", "4/7", "4/8"):
            raise ValueError("coding rate %r is not one of 4/5 .. 4/8" % self.codr)
        if self.tx_mode not in ("imme", "tmst"):
            raise ValueError("tx mode %r is not imme or tmst" % self.tx_mode)

    def on_channel(self, pk: gwmp.Rxpk) -> bool:
        return pk.modu == "LORA" and pk.datr == self.datr \
            and abs(pk.freq - self.freq_mhz) < 0.0005

    def airtime_s(self, n: int) -> float:
        sf, bw = gwmp.datr_parts(self.datr)
        return time_on_air(n, sf, bw * 1000, int(self.codr[2]) - 4, self.prea)


@dataclass
class BridgeConfig:
    server: Addr
    listen: Addr = ("0.0.0.0", 1700)
    plan: RadioPlan = field(default_factory=RadioPlan)
    dedup_s: float = 1.0      # below the devices' first retransmission timer (3 s)
    collect_s: float = 0.2    # wait for other gateways' copies before answering
    id_len: int = 8
    max_flows: int = 256
    pull_timeout_s: float = 60.0   # a gateway without PULL_DATA this long gets no downlinks


@dataclass
class Gateway:
    eui: bytes
    pull_addr: Addr | None = None
    last_pull: float = 0.0
    push_addr: Addr | None = None
    uplinks: int = 0
    downlinks: int = 0


@dataclass
class PendingTx:
    flow: Flow
    frame: bytes
    heard: list[Heard]
    at: float


class Bridge(asyncio.DatagramProtocol):
    def __init__(self, cfg: BridgeConfig) -> None:
        cfg.plan.check()
        self.cfg = cfg
        self.counters: Counter[str] = Counter()
        self.gateways: OrderedDict[bytes, Gateway] = OrderedDict()   # least recent first
        self.transport: asyncio.DatagramTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.routes: Routes | None = None
        self._recent: OrderedDict[bytes, tuple[float, list[Flow]]] = OrderedDict()
        self._pending: OrderedDict[int, PendingTx] = OrderedDict()
        self._token = 0
        self._logged: set[tuple[Any, str]] = set()
        self.frames_up: list[bytes] = []      # forwarded to B (for tests and the demo)
        self.frames_down: list[bytes] = []    # handed to a gateway

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> Addr:
        self.loop = asyncio.get_running_loop()
        self.transport, _ = await self.loop.create_datagram_endpoint(
            lambda: self, local_addr=self.cfg.listen)
        self.routes = Routes(self._open_flow, self.cfg.id_len, self.cfg.max_flows)
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self.routes is not None:
            self.routes.close()
        if self.transport is not None:
            self.transport.close()

    def _open_flow(self, name: str) -> Flow:
        assert self.loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(self.cfg.server)
        flow = Flow(name, lambda data: self._to_b(sock, data), lambda: self._shut(sock))
        self.loop.add_reader(sock.fileno(), self._from_b, sock, flow)
        return flow

    def _shut(self, sock: socket.socket) -> None:
        if self.loop is not None and sock.fileno() >= 0:
            self.loop.remove_reader(sock.fileno())
        sock.close()

    def _to_b(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.send(data)
        except OSError as e:           # B down (ICMP refused) or the buffer full
            self.counters["to_b_failed"] += 1
            self._log_once(("b", type(e).__name__), "b_unreachable", error=str(e))

    # -- from gateways ------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Addr) -> None:  # type: ignore[override]
        try:
            dg = gwmp.parse(data)
        except gwmp.GwmpError as e:
            self.counters["rejected"] += 1
            self.counters["rejected:" + type(e).__name__] += 1
            self._log_once((addr, type(e).__name__), "gwmp_rejected", peer="%s:%d" % addr,
                           error=type(e).__name__, detail=str(e))
            return
        gw = self.gateways.get(dg.eui)
        if gw is None:
            gw = self.gateways[dg.eui] = Gateway(dg.eui)
            if len(self.gateways) > MAX_GATEWAYS:
                self.gateways.popitem(last=False)
            log.info("gateway", extra={"event": "gateway", "fields": {
                "eui": dg.eui.hex(), "peer": "%s:%d" % addr}})
        else:
            self.gateways.move_to_end(dg.eui)
        assert self.transport is not None
        now = time.monotonic()
        if dg.kind == gwmp.PULL_DATA:
            gw.pull_addr, gw.last_pull = addr, now
            self.counters["pull_data"] += 1
            self.transport.sendto(gwmp.pull_ack(dg.token), addr)
        elif dg.kind == gwmp.PUSH_DATA:
            gw.push_addr = addr
            self.counters["push_data"] += 1
            self.transport.sendto(gwmp.push_ack(dg.token), addr)
            for pk in dg.rxpk:
                self._uplink(gw, pk, now)
        else:
            self._tx_ack(gw, dg)

    def _uplink(self, gw: Gateway, pk: gwmp.Rxpk, now: float) -> None:
        if pk.stat != 1:
            self.counters["rx_crc_bad" if pk.stat == -1 else "rx_no_crc"] += 1
            return
        if not self.cfg.plan.on_channel(pk):
            self.counters["rx_off_channel"] += 1
            return
        if not pk.data:
            self.counters["rx_empty"] += 1
            return
        assert self.routes is not None
        gw.uplinks += 1
        heard = Heard(gw.eui, pk.tmst, pk.rssi, pk.lsnr)
        self._expire(now)
        seen = self._recent.get(pk.data)
        if seen is not None:               # another gateway (or a repeat) of this frame
            self.counters["rx_duplicate"] += 1
            for flow in seen[1]:
                flow.hear(heard, new_uplink=False)
            return
        flows = self.routes.for_uplink(pk.data, now)
        self._recent[pk.data] = (now, flows)
        if len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)
        for flow in flows:
            flow.hear(heard, new_uplink=True, now=now)
            flow.send(pk.data)
        self.counters["uplinks"] += 1
        self.frames_up.append(pk.data)

    def _expire(self, now: float) -> None:
        while self._recent:
            first = next(iter(self._recent.values()))
            if now - first[0] < self.cfg.dedup_s:
                break
            self._recent.popitem(last=False)
        while self._pending:
            first_tx = next(iter(self._pending.values()))
            if now - first_tx.at < 30.0:
                break
            self._pending.popitem(last=False)
            self.counters["tx_unacknowledged"] += 1

    # -- from B ---------------------------------------------------------------------------
    def _from_b(self, sock: socket.socket, flow: Flow) -> None:
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            except OSError as e:           # ICMP port unreachable: B is not listening
                self.counters["from_b_failed"] += 1
                self._log_once(("b", type(e).__name__), "b_unreachable", error=str(e))
                return
            assert self.routes is not None and self.loop is not None
            now = time.monotonic()
            self.routes.learn(flow, data, now)
            self.counters["from_b"] += 1
            wait = flow.heard_at + self.cfg.collect_s - now
            if wait <= 0 and not flow.outbox:
                self._downlink(flow, data, list(flow.heard))
                continue
            flow.outbox.append(data)           # in order, after the collection window
            if len(flow.outbox) == 1:
                self.loop.call_later(max(0.0, wait), self._flush, flow)

    def _flush(self, flow: Flow) -> None:
        out, flow.outbox = flow.outbox, []
        for data in out:
            if not flow.closed:
                self._downlink(flow, data, list(flow.heard))

    def _downlink(self, flow: Flow, frame: bytes, heard: list[Heard]) -> None:
        now = time.monotonic()
        while heard:
            h = heard.pop(0)
            gw = self.gateways.get(h.eui)
            if gw is None or gw.pull_addr is None \
                    or now - gw.last_pull > self.cfg.pull_timeout_s:
                self.counters["tx_no_pull_route"] += 1
                continue
            plan = self.cfg.plan
            imme = plan.tx_mode == "imme"
            tmst = None
            if not imme:
                slot_us = round((plan.airtime_s(len(frame)) + TX_GAP_S) * 1e6)
                offset_us = round(plan.rx_delay_s * 1e6) + flow.downlinks * slot_us
                tmst = (h.tmst + offset_us) & 0xFFFFFFFF
            flow.downlinks += 1
            txpk = gwmp.Txpk(frame, plan.freq_mhz, plan.datr, plan.codr, plan.powe,
                             plan.ipol, imme, tmst, plan.rfch, plan.prea)
            self._token = (self._token + 1) & 0xFFFF
            self._pending[self._token] = PendingTx(flow, frame, heard, now)
            while len(self._pending) > 4096:
                self._pending.popitem(last=False)
            assert self.transport is not None
            self.transport.sendto(gwmp.pull_resp(self._token, txpk), gw.pull_addr)
            gw.downlinks += 1
            self.counters["downlinks"] += 1
            self.frames_down.append(frame)
            return
        self.counters["tx_no_gateway"] += 1

    def _tx_ack(self, gw: Gateway, dg: gwmp.Datagram) -> None:
        pending = self._pending.pop(dg.token, None)
        if dg.tx_error in (None, "NONE"):
            self.counters["tx_ok"] += 1
            return
        self.counters["tx_error:" + str(dg.tx_error)] += 1
        self._log_once((gw.eui, str(dg.tx_error)), "tx_error", eui=gw.eui.hex(),
                       error=dg.tx_error)
        if pending is not None and pending.heard:
            self.counters["tx_retry_other_gateway"] += 1
            self._downlink(pending.flow, pending.frame, pending.heard)

    # -- logging ----------------------------------------------------------------------------
    def _log_once(self, key: tuple[Any, str], event: str, **fields: Any) -> None:
        if key in self._logged:
            return
        if len(self._logged) > 1024:
            self._logged.clear()
        self._logged.add(key)
        log.warning(event, extra={"event": event, "fields": fields})

    def stats(self) -> dict[str, Any]:
        return {"counters": dict(self.counters),
                "gateways": {g.eui.hex(): {"uplinks": g.uplinks, "downlinks": g.downlinks}
                             for g in self.gateways.values()},
                "flows": len(self.routes.by_id) if self.routes else 0}
