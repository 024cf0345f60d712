# airshake_tools.linkemu.air: the air for the stand-in lora driver (mp/lora, which the
# firmware runs on the unix port) and, optionally, a single-channel LoRa gateway on it.
# Stand-in radios send their packets here over UDP behind a header naming the channel
# (HEADER), and say when they listen ("tune"). A packet goes to every other radio
# listening on its channel (frequency, SF, bandwidth, sync word, IQ polarity), each
# delivery lost with probability `loss` (seeded). With a `gateway` channel, this is also a
# single-channel gateway: a packet on that channel with IQ not inverted is forwarded to
# the upstream (B, or a relay in front of it); a packet on another channel is counted and
# lost, as it would be on the air. The upstream's datagrams go out on the gateway's
# channel, IQ inverted as LoRa downlinks are (invert_downlinks; the boards listen with
# invert_iq_rx), to every radio listening there, one after another, each after its time
# on air (scaled like the stand-in's). gateway=None is the air alone, for gateways that
# are radios on it (gwmp_gateway.py, firmware_gateway/). `python -m
# airshake_tools.linkemu.air` runs the air alone as a process (the demo's gateway path).
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

MAGIC = b"LA"
KIND_PACKET = 0
KIND_TUNE = 1
HEADER = ">2sBIBHHBbb"          # as mp/lora: magic, kind, freq_khz, sf, bw (100 Hz),
                                # sync, iq, rssi (dBm), snr (dB)
HEADER_LEN = struct.calcsize(HEADER)
_BW = {"7.8": 7800, "10.4": 10400, "15.6": 15600, "20.8": 20800, "31.25": 31250,
       "41.7": 41700, "62.5": 62500, "125": 125000, "250": 250000, "500": 500000}


@dataclass(frozen=True)
class Channel:
    freq_khz: int
    sf: int
    bw: str = "125"
    syncword: int = 0x12
    inverted: bool = False

    @classmethod
    def of(cls, lora: dict) -> "Channel":
        """The channel a board's LORA settings put a radio on."""
        return cls(lora["freq_khz"], lora.get("sf", 7), str(lora.get("bw", "125")),
                   lora.get("syncword", 0x12), bool(lora.get("invert_iq_tx", False)))

    def key(self) -> tuple[int, int, int, int, bool]:
        return (self.freq_khz, self.sf, _BW[self.bw] // 100, self.syncword, self.inverted)

    def airtime_s(self, n: int, speed: int) -> float:
        t_sym = (1 << self.sf) / _BW[self.bw]
        return (12 + 4.25 + 8 + max(0, -(-(8 * n + 16 - 4 * self.sf + 28) // (4 * self.sf))) * 5) \
            * t_sym / speed


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    return sock


class LoraAir:
    """Two UDP sockets, each served by its own thread while used as a context manager:
    `front` (its port is `port`) is the air the stand-in radios talk to; `back` talks to
    the upstream."""

    def __init__(self, gateway: Channel | None, upstream: tuple[str, int] | None,
                 speed: int = 20, loss: float = 0.0, seed: int = 0,
                 invert_downlinks: bool = True) -> None:
        self.front = _bound()
        self.back = _bound()
        self.port = self.front.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True, args=args)
                         for args in ((self.front, 2048, self.from_front),
                                      (self.back, 4096, self.from_back))]
        self.gateway = gateway
        self.upstream = upstream
        self.speed = speed
        self.loss = loss
        self.invert_downlinks = invert_downlinks
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.listeners: dict[tuple[str, int], tuple] = {}
        self.uplinks: list[bytes] = []
        self.downlinks: list[bytes] = []
        self.lost: list[tuple] = []          # (channel key, payload) heard on no channel
        self.sent: list[tuple] = []          # (channel key, payload): every packet on the air
        self.dropped = 0                     # deliveries lost to `loss`
        self.rssi = -57                      # dBm and dB the radios hear the gateway at
        self.snr = 36

    def __enter__(self) -> "LoraAir":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        self.front.close()
        self.back.close()

    def _serve(self, sock: socket.socket, bufsize: int, handle: Any) -> None:
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(bufsize)
            except socket.timeout:
                continue
            except OSError:          # ICMP port unreachable from a stopped radio
                continue
            handle(data, addr)

    def _deliver(self, data: bytes, addr: tuple[str, int]) -> None:
        with self._lock:
            lost = self.loss and self._random.random() < self.loss
        if lost:
            self.dropped += 1
        else:
            self.front.sendto(data, addr)

    def from_front(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < HEADER_LEN:
            return
        magic, kind, f, sf, bw, sync, iq, _, _ = struct.unpack(HEADER, data[:HEADER_LEN])
        if magic != MAGIC:
            return
        key = (f, sf, bw, sync, bool(iq))
        if kind == KIND_TUNE:
            self.listeners[addr] = key
            return
        payload = data[HEADER_LEN:]
        self.sent.append((key, payload))
        for other, their in list(self.listeners.items()):
            if other != addr and their == key:
                self._deliver(data, other)
        if self.gateway is None:
            return
        if key == self.gateway.key():
            self.uplinks.append(payload)
            if self.upstream is not None:
                self.back.sendto(payload, self.upstream)
        else:
            self.lost.append((key, payload))

    def from_back(self, payload: bytes, _addr: object) -> None:
        self.transmit(payload)

    def transmit(self, payload: bytes) -> None:
        """Send payload on the gateway's channel to every radio listening there."""
        g = self.gateway
        assert g is not None, "transmit() needs the air's own gateway"
        time.sleep(g.airtime_s(len(payload), self.speed))
        iq = g.inverted != self.invert_downlinks
        head = struct.pack(HEADER, MAGIC, KIND_PACKET, g.freq_khz, g.sf, _BW[g.bw] // 100,
                           g.syncword, iq, self.rssi, self.snr)
        self.downlinks.append(payload)
        down = g.key()[:4] + (iq,)
        for addr, key in list(self.listeners.items()):
            if key == down:
                self._deliver(head + payload, addr)


def main() -> None:
    """`python -m airshake_tools.linkemu.air [--speed N] [--loss P] [--seed S]`: the air
    alone as a process, for the demo's gateway path (host_server/gateway/demo_path.py).
    Prints "air on 127.0.0.1:PORT", then at SIGTERM one JSON line of what crossed it:
    frames and bytes up (normal IQ) and down (inverted)."""
    import argparse
    import json
    import signal

    p = argparse.ArgumentParser(prog="python -m airshake_tools.linkemu.air")
    p.add_argument("--speed", type=int, default=20)
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LoraAir(None, None, speed=args.speed, loss=args.loss, seed=args.seed) as air:
        print("air on 127.0.0.1:%d" % air.port, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        up = [p for k, p in air.sent if not k[4]]
        down = [p for k, p in air.sent if k[4]]
        print(json.dumps({"frames_up": len(up), "bytes_up": sum(map(len, up)),
                          "frames_down": len(down), "bytes_down": sum(map(len, down)),
                          "lost": air.dropped}), flush=True)


if __name__ == "__main__":
    main()
