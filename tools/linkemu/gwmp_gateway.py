# airshake_tools.linkemu.gwmp_gateway: a LoRa gateway running the Semtech UDP packet
# forwarder (GWMP v2), simulated: a radio on the stand-in air (air.py, the header of the stand-in
# lora driver mp/lora) that hears one channel, and a packet forwarder that talks to
# a network server (here: `airshake gateway`) over two UDP sockets, up (PUSH_DATA with
# rxpk, answered by PUSH_ACK) and down (PULL_DATA keep-alives answered by PULL_ACK; then
# PULL_RESP with txpk, answered by TX_ACK), as Lora-net/packet_forwarder does.
#
# Written from PROTOCOL.TXT, independently of host_server.gateway.gwmp, so the bridge is
# tested against a second implementation. What it checks of a txpk, as the reference
# forwarder's JIT queue does: tmst in the past -> TOO_LATE, more than 3 s ahead ->
# TOO_EARLY, overlapping a scheduled or running transmission -> COLLISION_PACKET, a
# frequency outside tx_band -> TX_FREQ; `fail_next` forces errors. The gateway's tmst is
# a free-running 32-bit µs counter; the simulated air time is divided by `speed` like the
# stand-in driver's. While it transmits it hears nothing (half duplex).
# `python -m airshake_tools.linkemu.gwmp_gateway` runs one as a process (the demo's
# gateway path).
from __future__ import annotations

import base64
import json
import os
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from airshake_tools.linkemu.air import HEADER, HEADER_LEN, KIND_PACKET, KIND_TUNE, MAGIC

_BW_HZ = {"125": 125000, "250": 250000, "500": 500000}
JIT_AHEAD_S = 3.0               # the reference forwarder refuses tmst further ahead


def time_on_air_s(n: int, sf: int, bw_hz: int, cr: int = 1, preamble: int = 8) -> float:
    t_sym = (1 << sf) / bw_hz
    de = 1 if t_sym >= 0.016 else 0
    num = 8 * n - 4 * sf + 28 + 16
    syms = 8 + max(-(-num // (4 * (sf - 2 * de))) * (cr + 4), 0)
    return (preamble + 4.25 + syms) * t_sym


@dataclass
class RxChannel:
    freq_khz: int = 868100
    sf: int = 7
    bw: str = "125"
    syncword: int = 0x12

    @property
    def datr(self) -> str:
        return "SF%dBW%s" % (self.sf, self.bw)


@dataclass
class GatewayLog:
    pushed: list[bytes] = field(default_factory=list)       # payloads sent up in rxpk
    push_acks: int = 0
    pull_acks: int = 0
    txpk: list[dict] = field(default_factory=list)          # every txpk received
    transmitted: list[bytes] = field(default_factory=list)  # payloads put on the air
    tx_acks: list[str] = field(default_factory=list)        # the error of each TX_ACK
    deaf: int = 0                                           # heard while transmitting


class GwmpGateway:
    def __init__(self, eui: bytes, server: tuple[str, int], air: tuple[str, int],
                 channel: RxChannel | None = None, speed: int = 20, rssi: int = -70,
                 lsnr: float = 7.5, keepalive_s: float = 0.5,
                 tx_band_khz: tuple[int, int] = (863000, 870000)) -> None:
        self.eui = eui
        self.server = server
        self.air = air
        self.channel = channel or RxChannel()
        self.speed = speed
        self.rssi = rssi
        self.lsnr = lsnr
        self.keepalive_s = keepalive_s
        self.tx_band_khz = tx_band_khz
        self.fail_next: list[str] = []         # TX_ACK errors to answer, in order
        self.log = GatewayLog()
        self._t0 = time.monotonic() - random.random() * 1000   # the counter is not 0 at boot
        self._radio = self._bound()
        self._up = self._bound()
        self._down = self._bound()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tx_busy: list[tuple[float, float]] = []   # (start, end) monotonic, scheduled
        self._threads = [threading.Thread(target=f, daemon=True)
                         for f in (self._radio_loop, self._up_loop, self._down_loop)]

    @staticmethod
    def _bound() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.05)
        return s

    def __enter__(self) -> "GwmpGateway":
        self._tune()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        for s in (self._radio, self._up, self._down):
            s.close()

    # -- the gateway's clock ---------------------------------------------------------------
    def tmst(self, at: float | None = None) -> int:
        return int(((time.monotonic() if at is None else at) - self._t0) * 1e6) & 0xFFFFFFFF

    def _at(self, tmst: int) -> float:
        """The monotonic time of a tmst value (the nearest one, modulo 2**32 µs)."""
        now = self.tmst()
        delta = (tmst - now + 2**31) % 2**32 - 2**31
        return time.monotonic() + delta / 1e6

    # -- radio side -------------------------------------------------------------------------
    def _tune(self) -> None:
        c = self.channel
        self._radio.sendto(struct.pack(HEADER, MAGIC, KIND_TUNE, c.freq_khz, c.sf,
                                       _BW_HZ[c.bw] // 100, c.syncword, 0, 0, 0), self.air)

    def _radio_loop(self) -> None:
        c = self.channel
        while not self._stop.is_set():
            try:
                data = self._radio.recv(2048)
            except socket.timeout:
                continue
            if len(data) < HEADER_LEN:
                continue
            magic, kind, f, sf, bw, sync, iq, _, _ = struct.unpack(HEADER, data[:HEADER_LEN])
            if (magic, kind, f, sf, bw * 100, sync, iq) != \
                    (MAGIC, KIND_PACKET, c.freq_khz, c.sf, _BW_HZ[c.bw], c.syncword, 0):
                continue
            if self._transmitting():
                self.log.deaf += 1
                continue
            self._push(data[HEADER_LEN:])

    def _transmitting(self) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(s <= now <= e for s, e in self._tx_busy)

    def _push(self, payload: bytes) -> None:
        c = self.channel
        rx = {"tmst": self.tmst(), "chan": 0, "rfch": 0, "freq": c.freq_khz / 1000, "stat": 1,
              "modu": "LORA", "datr": c.datr, "codr": "4/5", "rssi": self.rssi,
              "lsnr": self.lsnr, "size": len(payload),
              "data": base64.b64encode(payload).decode()}
        body = json.dumps({"rxpk": [rx]}).encode()
        self.log.pushed.append(payload)
        self.send_raw(self._header(0x00) + self.eui + body, up=True)

    # -- GWMP -------------------------------------------------------------------------------
    @staticmethod
    def _header(ident: int, token: int | None = None) -> bytes:
        tok = token if token is not None else int.from_bytes(os.urandom(2), "big")
        return bytes((2,)) + tok.to_bytes(2, "big") + bytes((ident,))

    def send_raw(self, data: bytes, up: bool = True) -> None:
        """Send any datagram to the server from the up (or down) socket: tests send
        malformed ones this way."""
        (self._up if up else self._down).sendto(data, self.server)

    def _up_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._up.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            if len(data) >= 4 and data[0] == 2 and data[3] == 0x01:
                self.log.push_acks += 1

    def _down_loop(self) -> None:
        next_pull = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_pull:
                self.send_raw(self._header(0x02) + self.eui, up=False)
                next_pull = time.monotonic() + self.keepalive_s
            try:
                data = self._down.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            if len(data) < 4 or data[0] != 2:
                continue
            if data[3] == 0x04:
                self.log.pull_acks += 1
            elif data[3] == 0x03:
                self._pull_resp(int.from_bytes(data[1:3], "big"), data[4:])

    def _pull_resp(self, token: int, body: bytes) -> None:
        try:
            txpk = json.loads(body)["txpk"]
            payload = base64.b64decode(txpk["data"])
        except (ValueError, KeyError, TypeError):
            self._tx_ack(token, "TX_FREQ")      # the reference forwarder just drops it
            return
        self.log.txpk.append(txpk)
        error = self._schedule(txpk, payload)
        self._tx_ack(token, error)

    def _tx_ack(self, token: int, error: str) -> None:
        self.log.tx_acks.append(error)
        body = json.dumps({"txpk_ack": {"error": error}}).encode()
        self.send_raw(self._header(0x05, token) + self.eui + body, up=False)

    def _schedule(self, txpk: dict, payload: bytes) -> str:
        if self.fail_next:
            return self.fail_next.pop(0)
        freq_khz = round(float(txpk.get("freq", 0)) * 1000)
        if not self.tx_band_khz[0] <= freq_khz <= self.tx_band_khz[1]:
            return "TX_FREQ"
        sf, bw = txpk["datr"][2:].split("BW")
        cr = int(str(txpk.get("codr", "4/5"))[2]) - 4
        airtime = time_on_air_s(len(payload), int(sf), int(bw) * 1000, cr,
                                int(txpk.get("prea", 8))) / self.speed
        now = time.monotonic()
        start = now if txpk.get("imme") else self._at(int(txpk["tmst"]))
        if start < now - 0.001:
            return "TOO_LATE"
        if start > now + JIT_AHEAD_S:
            return "TOO_EARLY"
        with self._lock:
            self._tx_busy = [(s, e) for s, e in self._tx_busy if e >= now]
            if txpk.get("imme"):              # imme goes after what is queued
                start = max([start] + [e for _, e in self._tx_busy])
            elif any(s < start + airtime and start < e for s, e in self._tx_busy):
                return "COLLISION_PACKET"
            self._tx_busy.append((start, start + airtime))
        head = struct.pack(HEADER, MAGIC, KIND_PACKET, freq_khz, int(sf), int(bw) * 10,
                           self.channel.syncword, bool(txpk.get("ipol")), self.rssi,
                           int(self.lsnr))
        t = threading.Timer(max(0.0, start + airtime - time.monotonic()), self._emit,
                            (head + payload, payload))
        t.daemon = True
        t.start()
        return "NONE"

    def _emit(self, packet: bytes, payload: bytes) -> None:
        if self._stop.is_set():
            return
        self.log.transmitted.append(payload)
        self._radio.sendto(packet, self.air)


def main() -> None:
    """`python -m airshake_tools.linkemu.gwmp_gateway --eui HEX --server HOST:PORT --air
    HOST:PORT`: one simulated gateway as a process (the demo's gateway path). Prints
    "gateway EUI ready", and at SIGTERM one JSON line of its counts."""
    import argparse
    import signal

    def addr(text: str) -> tuple[str, int]:
        host, _, port = text.rpartition(":")
        return host, int(port)

    p = argparse.ArgumentParser(prog="python -m airshake_tools.linkemu.gwmp_gateway")
    p.add_argument("--eui", required=True)
    p.add_argument("--server", required=True, type=addr)
    p.add_argument("--air", required=True, type=addr)
    p.add_argument("--speed", type=int, default=20)
    p.add_argument("--lsnr", type=float, default=7.5)
    args = p.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with GwmpGateway(bytes.fromhex(args.eui), args.server, args.air, speed=args.speed,
                     lsnr=args.lsnr) as gw:
        print("gateway %s ready" % args.eui, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        print(json.dumps({"eui": args.eui, "pushed": len(gw.log.pushed),
                          "transmitted": len(gw.log.transmitted),
                          "tx_acks": gw.log.tx_acks.count("NONE")}), flush=True)


if __name__ == "__main__":
    main()
