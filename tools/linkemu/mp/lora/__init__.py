# airshake_tools.linkemu mp/lora (MicroPython, put on the device's MICROPYPATH, not imported
# by CPython): a stand-in for micropython-lib's `lora` package (lora 0.2
# with lora-sx127x 0.1, lora-sx126x 0.1, lora-sync and lora-async 0.1) on the unix port,
# where the real driver cannot be installed and there is no SPI bus. Same names and
# signatures as the documented API (micropython/lora/README.md):
#   SX1276 (= SX1277, SX1278, SX1279), SX1261, SX1262 and AsyncSX1276.., AsyncSX1261,
#   AsyncSX1262; constructors (spi, cs, dio0=, dio1=, reset=, lora_cfg=, ant_sw=) and
#   (spi, cs, busy, dio1=, dio2_rf_sw=, dio3_tcxo_millivolts=, dio3_tcxo_start_time_us=,
#   reset=, lora_cfg=, ant_sw=); configure(lora_cfg) checking keys and values as the
#   drivers do (ConfigError "Invalid lora_cfg <key>", KeyError for an unknown bw,
#   RuntimeError("Receiving") while receiving) and, stricter than the drivers, refusing
#   an unknown key; send(packet, tx_at_ms=None); recv(timeout_ms=None, rx_length=0xFF,
#   rx_packet=None) -> RxPacket (a bytearray with ticks_ms, snr in dB x 4 as the
#   drivers give it, rssi in dBm, valid_crc, crc_error) or None; the Async classes'
#   coroutines of the same signatures and recv_continuous(rx_length=0xFF,
#   rx_packet=None), an async iterator of RxPacket until standby() or sleep();
#   get_time_on_air_us(), standby(), sleep(), is_idle().
# The air is UDP: a packet goes to the air (airshake_tools.linkemu.air) at $AIRSHAKE_AIR
# (host:port) behind a header
# naming the channel (frequency, SF, bandwidth, sync word, IQ polarity); a radio also
# tells the relay its channel when it starts receiving ("tune"). The relay delivers a
# packet only to radios tuned to the same channel, as the real receivers would. Airtime
# is the real time on air divided by $AIRSHAKE_AIR_SPEED (default 20).
import os
import socket
import struct
import time

import asyncio
from machine import Pin  # type: ignore[import-not-found]  # mp/machine.py on MICROPYPATH

MAGIC = b"LA"
KIND_PACKET = 0
KIND_TUNE = 1
# magic, kind, freq_khz, sf, bw (100 Hz), sync, iq, rssi (dBm), snr (dB)
HEADER = ">2sBIBHHBbb"
HEADER_LEN = struct.calcsize(HEADER)

_BW = {"7.8": 7800, "10.4": 10400, "15.6": 15600, "20.8": 20800, "31.25": 31250,
       "41.7": 41700, "62.5": 62500, "125": 125000, "250": 250000, "500": 500000}
_COMMON = ("freq_khz", "sf", "bw", "coding_rate", "output_power", "implicit_header",
           "crc_en", "syncword", "pa_ramp_us", "preamble_len", "invert_iq_tx",
           "invert_iq_rx", "rx_boost")
# lna_boost_hf: lora-sx127x 0.1 reads it whenever rx_boost is given
_SX127X_ONLY = ("tx_ant", "auto_image_cal", "lna_gain", "lna_boost_hf")


class ConfigError(ValueError):
    def __init__(self, field):
        super().__init__("Invalid lora_cfg {}".format(field))


class RxPacket(bytearray):
    def __init__(self, payload, ticks_ms=None, snr=None, rssi=None, valid_crc=True):
        super().__init__(payload)
        self.ticks_ms = ticks_ms
        self.snr = snr
        self.rssi = rssi
        self.valid_crc = valid_crc
        self.crc_error = not valid_crc


def _air():
    where = os.getenv("AIRSHAKE_AIR")
    if not where:
        raise RuntimeError("stand-in lora driver: set AIRSHAKE_AIR=host:port")
    host, port = where.rsplit(":", 1)
    return socket.getaddrinfo(host, int(port))[0][-1]


class _Modem:
    _family = "sx127x"
    _sf_min = 6
    _cr_min = 5
    _freq = (137000, 1020000)

    def _setup(self, spi, cs, reset, lora_cfg):
        if not hasattr(spi, "write_readinto"):
            raise TypeError("spi must be a machine.SPI")
        cs.init(Pin.OUT, value=1)
        if reset:
            reset.init(Pin.OUT, value=0)
            reset(1)
        self._freq_khz = 0
        self._sf = 7
        self._bw = "125"
        self._coding_rate = 5
        self._preamble_len = 12
        self._crc_en = True
        self._implicit = False
        self._sync = 0x12
        self._iq = [False, False]        # rx, tx
        self._rx = False
        self.crc_errors = 0
        self.rx_crc_error = False
        self.configured = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
        self._addr = None
        self._speed = int(os.getenv("AIRSHAKE_AIR_SPEED") or 20)
        if lora_cfg:
            self.configure(lora_cfg)

    # -- configuration ------------------------------------------------------------------
    def configure(self, lora_cfg):
        if self._rx is not False:
            raise RuntimeError("Receiving")
        allowed = _COMMON + (_SX127X_ONLY if self._family == "sx127x" else ())
        for k in lora_cfg:
            if k not in allowed:
                raise ConfigError(k)
        if "freq_khz" in lora_cfg:
            f = int(lora_cfg["freq_khz"])
            if not self._freq[0] <= f <= self._freq[1]:
                raise ConfigError("freq_khz")
            self._freq_khz = f
        if "bw" in lora_cfg:
            self._bw = str(lora_cfg["bw"])
            _BW[self._bw]                      # KeyError, as the drivers' lookup table
        if "coding_rate" in lora_cfg:
            cr = int(lora_cfg["coding_rate"])
            if cr < self._cr_min or cr > 8:
                raise ConfigError("coding_rate")
            self._coding_rate = cr
        if "implicit_header" in lora_cfg:
            self._implicit = bool(lora_cfg["implicit_header"])
        if "sf" in lora_cfg:
            sf = int(lora_cfg["sf"])
            if sf < self._sf_min or sf > 12:
                raise ConfigError("sf")
            if sf == 6 and self._family == "sx127x" and not self._implicit:
                raise ConfigError("SF6 requires implicit_header mode")
            self._sf = sf
        if "crc_en" in lora_cfg:
            self._crc_en = bool(lora_cfg["crc_en"])
        if "syncword" in lora_cfg:
            sw = lora_cfg["syncword"]
            if not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
                raise ConfigError("syncword")
            self._sync = sw
        if "preamble_len" in lora_cfg:
            pl = lora_cfg["preamble_len"]
            if not isinstance(pl, int) or not 1 <= pl <= 0xFFFF:
                raise ConfigError("preamble_len")
            self._preamble_len = pl
        if "pa_ramp_us" in lora_cfg and int(lora_cfg["pa_ramp_us"]) > 3400:
            raise ConfigError("pa_ramp_us")
        if "output_power" in lora_cfg:
            int(lora_cfg["output_power"])      # clamped by the drivers, never refused
        if "tx_ant" in lora_cfg:
            lora_cfg["tx_ant"].upper()
        if "lna_gain" in lora_cfg:
            g = lora_cfg["lna_gain"]
            if g is not None and not 1 <= g <= 6:
                raise ConfigError("lna_gain")
        if "invert_iq_rx" in lora_cfg:
            self._iq[0] = bool(lora_cfg["invert_iq_rx"])
        if "invert_iq_tx" in lora_cfg:
            self._iq[1] = bool(lora_cfg["invert_iq_tx"])
        self.configured.update(lora_cfg)

    def get_time_on_air_us(self, payload_len):
        bw_hz = _BW[self._bw]
        t_sym_us = 1000000 * (1 << self._sf) // bw_hz
        ldr = t_sym_us >= 16000
        bits = max(8 * payload_len + (16 if self._crc_en else 0) - 4 * self._sf + 8
                   + (0 if self._implicit else 20), 0)
        bps = (self._sf - 2 * ldr) * 4
        n_x4 = 17 + 4 * (self._preamble_len + 8 + ((bits + bps - 1) // bps) * self._coding_rate)
        return t_sym_us * n_x4 // 4

    # -- the air ---------------------------------------------------------------------------
    def _header(self, kind, iq):
        return struct.pack(HEADER, MAGIC, kind, self._freq_khz, self._sf,
                           _BW[self._bw] // 100, self._sync, iq, 0, 0)

    def _to_air(self, data):
        if self._addr is None:
            self._addr = _air()
        self._sock.sendto(data, self._addr)

    def _tune(self):
        self._to_air(self._header(KIND_TUNE, self._iq[0]))

    def _take(self):
        """One packet for this channel from the socket, or None (non-blocking)."""
        try:
            data = self._sock.recv(1024, socket.MSG_DONTWAIT)
        except OSError:
            return None
        if len(data) < HEADER_LEN:
            return None
        magic, kind, f, sf, bw, sync, iq, rssi, snr = struct.unpack(HEADER, data[:HEADER_LEN])
        if (magic != MAGIC or kind != KIND_PACKET or f != self._freq_khz or sf != self._sf
                or bw * 100 != _BW[self._bw] or sync != self._sync
                or bool(iq) != self._iq[0]):
            return None                   # not on our channel: a real receiver hears nothing
        return RxPacket(data[HEADER_LEN:], time.ticks_ms(), 4 * snr, rssi)

    def _prepare(self, packet):
        if len(packet) > 255:
            raise ValueError("packet too long")
        if not self._freq_khz:
            raise RuntimeError("stand-in lora driver: freq_khz was never configured")
        return self._header(KIND_PACKET, self._iq[1]) + bytes(packet)

    def _airtime_ms(self, n):
        return self.get_time_on_air_us(n) // 1000 // self._speed

    def standby(self):
        self._rx = False

    def sleep(self):
        self.standby()

    def is_idle(self):
        return self._rx is False


class _Sync:
    def send(self, packet, tx_at_ms=None):
        data = self._prepare(packet)
        if tx_at_ms is not None:
            time.sleep_ms(max(0, time.ticks_diff(tx_at_ms, time.ticks_ms())))
        time.sleep_ms(self._airtime_ms(len(packet)))
        self._to_air(data)
        return time.ticks_ms()

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        self._rx = True
        self._tune()
        t0 = time.ticks_ms()
        try:
            while True:
                rx = self._take()
                if rx is not None:
                    return rx
                if timeout_ms is not None and time.ticks_diff(time.ticks_ms(), t0) >= timeout_ms:
                    return None
                time.sleep_ms(2)
        finally:
            self._rx = False


class _Async:
    async def send(self, packet, tx_at_ms=None):
        data = self._prepare(packet)
        if tx_at_ms is not None:
            await asyncio.sleep_ms(max(0, time.ticks_diff(tx_at_ms, time.ticks_ms())))
        await asyncio.sleep_ms(self._airtime_ms(len(packet)))
        self._to_air(data)
        return time.ticks_ms()

    async def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        self._rx = True
        self._tune()
        t0 = time.ticks_ms()
        try:
            while self._rx is not False:
                rx = self._take()
                if rx is not None:
                    return rx
                if timeout_ms is not None and time.ticks_diff(time.ticks_ms(), t0) >= timeout_ms:
                    return None
                await asyncio.sleep_ms(2)
            return None                   # standby() or sleep() aborted the receive
        finally:
            self._rx = False

    def recv_continuous(self, rx_length=0xFF, rx_packet=None):
        self._rx = True
        self._tune()
        return _Continuous(self)


class _Continuous:
    """recv_continuous()'s async iterator: packets until standby() or sleep()."""

    def __init__(self, modem):
        self.modem = modem

    def __aiter__(self):
        return self

    async def __anext__(self):
        m = self.modem
        while not m.is_idle():
            rx = m._take()
            if rx is not None:
                return rx
            await asyncio.sleep_ms(2)
        raise StopAsyncIteration


class _SX127x(_Modem):
    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None):
        if dio0:
            dio0.init(Pin.IN)
            dio0.irq(None, trigger=Pin.IRQ_RISING)
            if dio1:
                dio1.init(Pin.IN)
        self.dio0, self.dio1 = dio0, dio1
        self._setup(spi, cs, reset, lora_cfg)


class _SX126x(_Modem):
    _family = "sx126x"
    _cr_min = 4
    _freq = (150000, 960000)

    def __init__(self, spi, cs, busy, dio1=None, dio2_rf_sw=True, dio3_tcxo_millivolts=None,
                 dio3_tcxo_start_time_us=1000, reset=None, lora_cfg=None, ant_sw=None):
        if busy is None or not hasattr(busy, "init"):
            raise TypeError("busy must be a machine.Pin")
        busy.init(Pin.IN)
        if dio1:
            dio1.init(Pin.IN)
        if dio3_tcxo_millivolts:
            if dio3_tcxo_millivolts < 1600 or dio3_tcxo_millivolts > 3300:
                raise ValueError("{} out of range".format("dio3_tcxo_millivolts"))
        self.busy, self.dio1 = busy, dio1
        self.dio2_rf_sw = dio2_rf_sw
        self.tcxo_mv = dio3_tcxo_millivolts
        self._setup(spi, cs, reset, lora_cfg)


class SX1276(_SX127x, _Sync):
    pass


class AsyncSX1276(_SX127x, _Async):
    pass


class SX1261(_SX126x, _Sync):
    pass


class SX1262(_SX126x, _Sync):
    pass


class AsyncSX1261(_SX126x, _Async):
    pass


class AsyncSX1262(_SX126x, _Async):
    pass


SX1277 = SX1278 = SX1279 = SX1276
AsyncSX1277 = AsyncSX1278 = AsyncSX1279 = AsyncSX1276
