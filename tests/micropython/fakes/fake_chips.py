# tests/micropython/fakes/fake_chips.py: what the fake LoRa chips (fake_sx127x.SX127x,
# fake_sx126x.SX126x) share: the radio side of a chip (a channel, transmitting for the
# packet's time on air, receiving what the air brings while in RX), the air, the chips'
# clock, and the wiring of chips onto the fake machine's pins from $AIRSHAKE_LORA_CHIP.
#
# The air: with $AIRSHAKE_AIR (host:port) it is airshake_tools.linkemu.air's (UDP, the same
# header as the stand-in lora package: one socket per chip, a "tune" when it starts
# receiving), else one in-process Air shared by every chip of the process. A packet is
# heard by a chip that is receiving on the same channel (frequency, SF, bandwidth, sync
# word, IQ polarity) when the packet ends; one arriving while the chip is not receiving is
# lost, as on the air. Time on air is the datasheet's formula on the chip's own registers,
# divided by $AIRSHAKE_AIR_SPEED (default 20, as linkemu/air.py); receive timeouts run in
# real time. The header's rssi is in dBm, its snr in dB.
#
# The clock: a chip's time-based events (end of a transmission, a receive timeout, a
# packet from the UDP air) happen when something looks at the chip (an SPI transfer, a
# read of BUSY/DIO) and on every tick of an asyncio task started with the first chip
# (every 1 ms), or in machine.idle() for the sync drivers. A DIO line's rising edge then
# runs the driver's ISR, as the chip's interrupt would.
#
# $AIRSHAKE_LORA_CHIP: chips separated by ";", each "kind:pin=N,...", e.g.
#   sx1276:sck=5,mosi=27,miso=19,cs=18,reset=14,dio0=26
#   sx1262:sck=9,mosi=10,miso=11,cs=8,reset=12,busy=13,dio1=14,tcxo=1800
import os
import socket
import struct
import time

import asyncio
import machine

MAGIC = b"LA"
KIND_PACKET = 0
KIND_TUNE = 1
HEADER = ">2sBIBHHBbb"          # as tools/linkemu/mp/lora and air.py
HEADER_LEN = struct.calcsize(HEADER)

CHIPS = []


def speed():
    return int(os.getenv("AIRSHAKE_AIR_SPEED") or 20)


def time_on_air_us(sf, bw_hz, cr, preamble, n, crc, implicit, ldro, sx126x=False):
    """Datasheet time on air (SX1276 DS 4.1.1.7; SX1261/2 DS 6.1.4 for SF5/6), cr 1..4
    meaning 4/5..4/8."""
    t_sym_us = (1 << sf) * 1000000 // bw_hz
    extra = 2 if sx126x and sf in (5, 6) else 0
    num = 8 * n - 4 * sf + 28 + (16 if crc else 0) - (20 if implicit else 0)
    if sx126x and sf in (5, 6):
        num -= 8
    den = 4 * (sf - (2 if ldro else 0))
    n_payload = 8 + max(-(-num // den) * (cr + 4), 0)
    return (4 * (preamble + extra) + 17 + 4 * n_payload) * t_sym_us // 4


class Air:
    """The in-process air: every chip that is not the sender hears the packet."""

    def transmit(self, sender, key, payload):
        for chip in CHIPS:
            if chip is not sender:
                chip.hear(key, payload, -60, 8)

    def tune(self, chip, key):
        pass

    def poll(self, chip):
        pass


class UdpAir:
    """airshake_tools.linkemu.air's air: a packet goes to the relay behind the channel header."""

    def __init__(self, where):
        host, port = where.rsplit(":", 1)
        self.addr = socket.getaddrinfo(host, int(port))[0][-1]
        self.socks = {}

    def _sock(self, chip):
        s = self.socks.get(id(chip))
        if s is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
            self.socks[id(chip)] = s
        return s

    def _send(self, chip, kind, key, payload=b""):
        f, sf, bw, sync, iq = key
        head = struct.pack(HEADER, MAGIC, kind, f, sf, bw, sync & 0xFFFF, iq, 0, 0)
        self._sock(chip).sendto(head + payload, self.addr)

    def transmit(self, sender, key, payload):
        self._send(sender, KIND_PACKET, key, payload)

    def tune(self, chip, key):
        self._send(chip, KIND_TUNE, key)

    def poll(self, chip):
        s = self._sock(chip)
        while True:
            try:
                data = s.recv(1024, socket.MSG_DONTWAIT)
            except OSError:
                return
            if len(data) < HEADER_LEN:
                continue
            magic, kind, f, sf, bw, sync, iq, rssi, snr = struct.unpack(HEADER,
                                                                        data[:HEADER_LEN])
            if magic == MAGIC and kind == KIND_PACKET:
                chip.hear((f, sf, bw, sync, bool(iq)), data[HEADER_LEN:], rssi, snr)


_AIR = []


def air():
    if not _AIR:
        where = os.getenv("AIRSHAKE_AIR")
        _AIR.append(UdpAir(where) if where else Air())
    return _AIR[0]


_CLOCK = []


async def _clock():
    while True:
        await asyncio.sleep_ms(1)
        for chip in CHIPS:
            chip.tick()


class Radio:
    """The RF side of a chip. The chip model calls start_tx/start_rx/stop and reads
    the results; subclasses give channel(), and on_tx_done(), on_rx(...), on_rx_timeout()."""

    def __init__(self, spi, cs):
        self.spi = spi              # (sck, mosi, miso) pin numbers
        self.cs = cs
        self.errors = []            # what a real chip would not have done as asked
        self.sent = []              # payloads this chip put on the air
        self.heard = []             # payloads received into its buffer
        self.missed = 0             # packets on the air while not receiving that channel
        self._tx_end = None
        self._tx_data = None
        self._rx = False
        self._rx_end = None
        CHIPS.append(self)
        machine.HARDWARE.append(self)
        machine.attach_spi(self)
        if not _CLOCK:
            _CLOCK.append(asyncio.create_task(_clock()))

    def selected(self):
        return machine.level(self.cs) == 0

    def now_us(self):
        return time.ticks_us()

    def start_tx(self, payload, toa_us):
        self._rx = False
        self._tx_data = bytes(payload)
        self._tx_end = time.ticks_add(time.ticks_us(), max(1, toa_us // speed()))

    def start_rx(self, timeout_us=None):
        """timeout_us None: until a packet (or forever, continuous)."""
        self._tx_end = None
        self._rx = True
        self._rx_end = None if timeout_us is None else time.ticks_add(time.ticks_us(),
                                                                       timeout_us)
        air().tune(self, self.channel())

    def stop(self):
        self._tx_end = None
        self._rx = False

    def receiving(self):
        return self._rx

    def tick(self):
        a = air()
        a.poll(self)
        now = time.ticks_us()
        if self._tx_end is not None and time.ticks_diff(now, self._tx_end) >= 0:
            self._tx_end = None
            self.sent.append(self._tx_data)
            a.transmit(self, self.channel(), self._tx_data)
            self.on_tx_done()
        if self._rx and self._rx_end is not None and time.ticks_diff(now, self._rx_end) >= 0:
            self._rx = False
            self.on_rx_timeout()

    def hear(self, key, payload, rssi, snr):
        # a LoRa PHY payload is at most 255 bytes: a longer one never was on the air
        if not self._rx or key != self.channel() or len(payload) > 255:
            self.missed += 1
            return
        self.heard.append(bytes(payload))
        self.on_rx(bytes(payload), rssi, snr)


def _pins(spec):
    pins = {}
    for part in spec.split(","):
        k, v = part.split("=")
        pins[k.strip()] = int(v)
    return pins


def wire():
    """Solder the chips $AIRSHAKE_LORA_CHIP names onto the fake machine's pins."""
    spec = os.getenv("AIRSHAKE_LORA_CHIP")
    if not spec:
        return
    for one in spec.split(";"):
        kind, pins = one.split(":", 1)
        p = _pins(pins)
        if kind.startswith("sx127"):
            from fake_sx127x import SX127x
            SX127x(p)
        elif kind.startswith("sx126"):
            from fake_sx126x import SX126x
            SX126x(p, kind)
        else:
            raise ValueError("fake chips: unknown chip %s" % kind)


machine.WIRING.append(wire)     # the stand-in machine solders them on with its first SPI bus
