# radios/lora.py: owns LoraRadio, raw LoRa (point to point, to a gateway that relays to
# B) on an SX127x or SX126x through micropython-lib's lora drivers, async API:
# lora.AsyncSX1276 (lora-sx127x) or lora.AsyncSX1261/AsyncSX1262 (lora-sx126x), both on
# lora-async. Built from the board file: machine.SPI and Pins from board.PINS ("spi",
# "sck", "mosi", "miso", "cs", "reset", and "dio0"/"dio1" or "busy"/"dio1"),
# board.LORA_CHIP, the modem configuration board.LORA (the driver's lora_cfg keys:
# freq_khz, sf, bw, coding_rate, output_power, syncword, preamble_len, ...; a config.json
# "lora" dict overrides them) and, for SX126x, the constructor extras board.SX126X.
# mtu is 255, the LoRa PHY payload limit; a frame is one packet, received through the
# driver's recv_continuous() (see recv()). Targets the API of micropython-lib's
# micropython/lora/README.md as shipped in lora 0.2 with lora-sx127x 0.1, lora-sx126x 0.1
# and lora-async 0.1 (`mpremote mip install lora-async lora-sx127x` or `lora-sx126x`),
# and is tested against those drivers on fake SX127x/SX126x chips
# (tests/host/test_lora_drivers.py). After a receive, rssi is in dBm and snr in dB (the
# drivers give SNR in dB x 4).
# Duty cycle: every frame waits for the sub-band's budget (radios.airtime.AirtimeBudget,
# config "duty_cycle": {"policy": "etsi-hour" | "lmn-credits" | "per-frame", "dcycle":
# 100 = 1 %}, default ETSI EN 300 220's 1 % over an hour; null turns it off where the band
# has no limit). The clock is the RTC's milliseconds, so the budget's state (airtime_state,
# kept by device.app across deep sleep) still holds after a wake. A wait up to
# "duty_wait_max_s" (default 30) is slept; a longer one is a RadioError naming it (the wake
# ends, the reading stays queued).
import asyncio
import time
from radios.base import Radio, RadioError

DUTY_DEFAULT = {"policy": "etsi-hour", "dcycle": 100}
_BW_HZ = {"7.8": 7800, "10.4": 10400, "15.6": 15600, "20.8": 20800, "31.25": 31250,
          "41.7": 41700, "62.5": 62500, "125": 125000, "250": 250000, "500": 500000}

CFG_KEYS = ("freq_khz", "sf", "bw", "coding_rate", "output_power", "tx_ant",
            "implicit_header", "crc_en", "auto_image_cal", "syncword", "pa_ramp_us",
            "preamble_len", "invert_iq_tx", "invert_iq_rx", "rx_boost", "lna_gain")
_SX126X_ARGS = ("dio2_rf_sw", "dio3_tcxo_millivolts", "dio3_tcxo_start_time_us")
_CHIPS = ("sx1276", "sx1277", "sx1278", "sx1279", "sx1261", "sx1262")


def _wall_ms():
    ns = getattr(time, "time_ns", None)     # the ESP32's time.time() counts whole seconds
    return ns() // 1000000 if ns is not None else int(time.time() * 1000)


def duty_budget(config, state=None, clock=_wall_ms):
    """The AirtimeBudget config["duty_cycle"] asks for (None when it is off), its state
    restored from `state` (airtime_state() of an earlier wake)."""
    dc = config.get("duty_cycle", DUTY_DEFAULT)
    if not dc:
        return None
    from radios.airtime import AirtimeBudget
    try:
        budget = AirtimeBudget(clock, dc.get("policy", "etsi-hour"), dc.get("dcycle", 100))
    except (ValueError, AttributeError) as e:
        raise RadioError("lora: duty_cycle setting: %s" % e)
    if state:
        budget.restore(state)
    return budget


def _board(board, name, default=None):
    v = getattr(board, name, None)
    if v is None and isinstance(board, dict):
        v = board.get(name)
    return default if v is None else v


def lora_cfg(board, config):
    """The driver's configure() dict: board.LORA, then config["lora"], known keys only."""
    cfg = {}
    for src in (_board(board, "LORA", {}), config.get("lora") or {}):
        for k in src:
            if k not in CFG_KEYS:
                raise RadioError("lora: unknown LORA setting %r" % k)
            cfg[k] = src[k]
    if not cfg.get("freq_khz"):
        raise RadioError("lora: LORA settings need freq_khz")
    return cfg


# the chips' synthesizer ranges (datasheets): the drivers do not check them (an SX127x
# given 2.4 GHz fails in struct packing, an SX126x is silently mistuned)
_FREQ_KHZ = {"sx127": (137000, 1020000), "sx126": (150000, 960000)}


def driver_cfg(chip, cfg):
    """cfg as the chip's driver needs it. lora-sx127x 0.1 never writes crc_en unless
    given, and the SX127x resets with the payload CRC off (RegModemConfig2 0x70) while
    the driver (and README) assume it on: an SX127x always gets crc_en (default True).
    It also reads rx_boost's value from the key lna_boost_hf (a KeyError without it), so
    an SX127x with rx_boost gets both."""
    lo, hi = _FREQ_KHZ[chip[:5]]
    if not lo <= cfg["freq_khz"] <= hi:
        raise RadioError("lora: %s: Invalid lora_cfg freq_khz" % chip)
    if chip.startswith("sx126"):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault("crc_en", True)
    if "rx_boost" in cfg:
        cfg["lna_boost_hf"] = cfg["rx_boost"]
    return cfg


class LoraRadio(Radio):
    mtu = 255

    def __init__(self, board, config, log=None, airtime=None):
        self.chip = _board(board, "LORA_CHIP", "sx1276").lower()
        if self.chip not in _CHIPS:
            raise RadioError("lora: chip %s not supported (%s)" % (self.chip, ", ".join(_CHIPS)))
        self.pins = _board(board, "PINS", {})
        self.extras = _board(board, "SX126X", {})
        self.cfg = lora_cfg(board, config)
        self.log = log
        self.rssi = None
        self.snr = None
        self._modem = None
        self._rx = None          # the driver's continuous receiver, from the first recv()
        self.budget = duty_budget(config, airtime)
        self.max_wait_ms = int(float(config.get("duty_wait_max_s", 30)) * 1000)

    def airtime_state(self):
        """The duty-cycle budget's state for the next wake (None: no budget)."""
        return self.budget.export() if self.budget is not None else None

    async def _wait_for_budget(self, size):
        """Sleep until the sub-band may carry a frame of `size` bytes, then count it."""
        if self.budget is None:
            return
        from radios.airtime import time_on_air_ms
        cfg = self.cfg
        ms = time_on_air_ms(size, cfg.get("sf", 7), _BW_HZ.get(str(cfg.get("bw", "125")),
                                                            125000),
                            max(1, cfg.get("coding_rate", 5) - 4), cfg.get("preamble_len", 8),
                            not cfg.get("implicit_header", False), cfg.get("crc_en", True))
        try:
            wait = self.budget.wait_ms(ms)
        except ValueError as e:             # a frame longer than the hour's budget
            raise RadioError("lora: duty cycle: %s" % e)
        if wait > self.max_wait_ms:
            raise RadioError("lora: duty cycle: the sub-band is free again in %d s (%s, 1/%d)"
                             % ((wait + 999) // 1000, self.budget.policy, self.budget.dcycle))
        if wait:
            if self.log is not None:
                self.log("lora duty cycle: waiting %d ms" % wait)
            await asyncio.sleep_ms(wait)
        self.budget.record(ms)

    async def open(self):
        if self._modem is not None:
            return
        try:
            import lora  # type: ignore
        except ImportError as e:
            raise RadioError("lora: micropython-lib lora driver missing (%s): "
                             "mpremote mip install lora-async lora-%s"
                             % (e, "sx126x" if self.chip.startswith("sx126") else "sx127x"))
        cls = getattr(lora, "Async" + self.chip.upper(), None)
        if cls is None:
            raise RadioError("lora: driver has no Async%s (install lora-async and lora-%s)"
                             % (self.chip.upper(),
                                "sx126x" if self.chip.startswith("sx126") else "sx127x"))
        try:
            from machine import Pin, SPI
            p = self.pins

            def pin(name):
                return Pin(p[name]) if p.get(name) is not None else None

            spi = SPI(p.get("spi", 1), baudrate=p.get("spi_baud", 2000000), polarity=0,
                      phase=0, sck=Pin(p["sck"]), mosi=Pin(p["mosi"]), miso=Pin(p["miso"]))
            cs = Pin(p["cs"])
        except KeyError as e:
            raise RadioError("lora: board PINS has no %s" % e)
        except (ImportError, ValueError, OSError) as e:
            raise RadioError("lora: SPI/pins: %s" % e)
        if self.chip.startswith("sx126") and pin("dio1") is None:
            # lora-sx126x unmasks the chip's IRQs (SetDioIrqParams) only when given DIO1;
            # all are masked at power-up (DS 13.3.1), so no send would ever complete
            raise RadioError("lora: %s: board PINS has no dio1 (the driver needs the "
                             "chip's DIO1 line)" % self.chip)
        try:
            cfg = driver_cfg(self.chip, self.cfg)
            if self.chip.startswith("sx126"):
                kw = {}
                for k in _SX126X_ARGS:
                    if k in self.extras:
                        kw[k] = self.extras[k]
                self._modem = cls(spi, cs, busy=pin("busy"), dio1=pin("dio1"),
                                  reset=pin("reset"), lora_cfg=cfg, **kw)
            else:
                self._modem = cls(spi, cs, dio0=pin("dio0"), dio1=pin("dio1"),
                                  reset=pin("reset"), lora_cfg=cfg)
        except KeyError as e:
            # the drivers look bw up in a table: an unknown bandwidth is a KeyError
            raise RadioError("lora: %s: invalid LORA value %r"
                             % (self.chip, e.args[0] if e.args else None))
        except (ValueError, RuntimeError, OSError, TypeError) as e:
            # ConfigError is a ValueError ("Invalid lora_cfg sf"); RuntimeError: the chip
            # did not answer as expected (wiring, SPI pins, TCXO voltage)
            raise RadioError("lora: %s: %s" % (self.chip, e))
        if self.log is not None:
            self.log("lora %s %s kHz SF%s BW%s" % (self.chip, self.cfg.get("freq_khz"),
                                                  self.cfg.get("sf"), self.cfg.get("bw")))

    async def send(self, frame):
        if self._modem is None:
            raise RadioError("lora: send before open")
        if len(frame) > self.mtu:
            raise RadioError("lora: frame of %d bytes exceeds the MTU %d"
                             % (len(frame), self.mtu))
        await self._wait_for_budget(len(frame))
        try:
            await self._modem.send(frame)
        except (ValueError, RuntimeError, OSError) as e:
            raise RadioError("lora: send failed: %s" % e)

    async def recv(self, timeout):
        # continuous receive from the first recv() to close(): with single receives the
        # chip is in standby from the end of one frame until the driver polls it (every
        # 50 ms on an SX127x without DIO1) and misses a frame sent right after (m2's
        # fragments); sends pause it and the driver resumes it after them
        if self._modem is None:
            raise RadioError("lora: recv before open")
        try:
            if self._rx is None:
                self._rx = self._modem.recv_continuous()
            rx = await asyncio.wait_for_ms(self._rx.__anext__(),
                                           max(1, int(timeout * 1000)))
        except asyncio.TimeoutError:
            return None
        except StopAsyncIteration:        # the modem left receive (standby, sleep)
            self._rx = None
            return None
        except (ValueError, RuntimeError, OSError) as e:
            self._rx = None
            raise RadioError("lora: recv failed: %s" % e)
        if not rx:
            return None
        self.rssi = rx.rssi
        self.snr = None if rx.snr is None else rx.snr / 4
        return bytes(rx)

    async def close(self):
        m, self._modem, self._rx = self._modem, None, None
        if m is not None:
            try:
                m.sleep()
            except (RuntimeError, OSError):
                pass
        await asyncio.sleep_ms(0)
