# airshake_tools.linkemu.lorawan: the LoRaWAN rules the link model needs: MAC framing
# overhead, regional data rates and payload limits, EU868 sub-band duty cycles (applied
# under a dutycycle policy), and the class A receive windows.
#
# Sources:
# - Payload limits N (application bytes, no FOpts) and data rates: LoRaWAN Regional
#   Parameters RP002-1.0.x (EU863-870 and US902-928 sections), as implemented in
#   Semtech's LoRaMac-node (RegionEU868.h MaxPayloadOfDatarateRepeaterEU868 =
#   {51, 51, 51, 115, 222, 222, ...}; RegionUS915.h MaxPayloadOfDatarateUS915 =
#   {11, 53, 125, 242, 242, ...}). EU868 DR4/DR5 allow 242 bytes where no repeater is
#   used; the repeater-compatible 222 is the default here, as RP002 lists it first.
# - Sub-bands: ETSI EN 300 220-2 as mapped by LoRaMac-node RegionEU868 (bands 0..4):
#   865.0-868.0 1 %, 868.0-868.6 1 %, 868.7-869.2 0.1 %, 869.4-869.65 10 %,
#   869.7-870.0 1 %, and 863.0-865.0 0.1 %. The three default channels 868.1/868.3/
#   868.5 MHz all lie in g1 and share one 1 % budget: more channels in one sub-band do
#   not buy airtime, more sub-bands do.
# - Class A: RECEIVE_DELAY1 = 1 s, RECEIVE_DELAY2 = 2 s after the end of the uplink
#   (LoRaWAN 1.0.x §3.3, RP002 default settings); EU868 RX2 is 869.525 MHz at DR0.
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airshake_tools.linkemu import dutycycle
from airshake_tools.linkemu.dutycycle import silence_after  # noqa: F401 - part of the rules here
from airshake_tools.linkemu.lora import time_on_air

# MHDR (1) + FHDR without FOpts (DevAddr 4, FCtrl 1, FCnt 2) + FPort (1) + MIC (4)
FRAME_OVERHEAD = 13
RX1_DELAY = 1.0
RX2_DELAY = 2.0

# (spreading factor, bandwidth in Hz) per uplink data rate
_DATA_RATES: dict[str, tuple[tuple[int, int], ...]] = {
    "EU868": ((12, 125000), (11, 125000), (10, 125000), (9, 125000), (8, 125000),
              (7, 125000)),
    "US915": ((10, 125000), (9, 125000), (8, 125000), (7, 125000), (8, 500000)),
}
# Maximum application payload N (FRMPayload, no FOpts) per uplink data rate
_MAX_PAYLOAD: dict[str, tuple[int, ...]] = {
    "EU868": (51, 51, 51, 115, 222, 222),
    "US915": (11, 53, 125, 242, 242),
}
_MAX_PAYLOAD_NO_REPEATER: dict[str, tuple[int, ...]] = {
    "EU868": (51, 51, 51, 115, 242, 242),
    "US915": (11, 53, 125, 242, 242),
}


@dataclass(frozen=True)
class SubBand:
    name: str
    low_mhz: float
    high_mhz: float
    duty: float          # fraction of time a transmitter may be on the air


EU868_SUBBANDS: dict[str, SubBand] = {b.name: b for b in (
    SubBand("h1.3", 863.0, 865.0, 0.001),
    SubBand("g", 865.0, 868.0, 0.01),
    SubBand("g1", 868.0, 868.6, 0.01),
    SubBand("g2", 868.7, 869.2, 0.001),
    SubBand("g3", 869.4, 869.65, 0.10),
    SubBand("g4", 869.7, 870.0, 0.01),
)}
# Sub-bands a device spreads its uplinks over: 1 = the default channels (868.1, 868.3,
# 868.5 MHz, all in g1); 2 = the usual network plan (867.1-867.9 MHz in g plus g1);
# 3 = every 1 % sub-band (g, g1, g4), the regulatory best case for one device.
UPLINK_SUBBANDS: dict[int, tuple[str, ...]] = {1: ("g1",), 2: ("g", "g1"), 3: ("g", "g1", "g4")}
# EU868 RX2: 869.525 MHz (g3, 10 %) at DR0
RX2_SUBBAND = "g3"
RX2_DR = 0


def region_name(region: str) -> str:
    key = str(region).upper()
    if key not in _DATA_RATES:
        raise ValueError("unknown LoRaWAN region %r; choose one of: %s"
                         % (region, ", ".join(_DATA_RATES)))
    return key


def _check_dr(region: str, dr: int) -> str:
    key = region_name(region)
    n = len(_DATA_RATES[key])
    if isinstance(dr, bool) or not isinstance(dr, int) or not 0 <= dr < n:
        raise ValueError("%s uplink data rate must be DR0..DR%d, not %r" % (key, n - 1, dr))
    return key


def dr_params(region: str, dr: int) -> tuple[int, int]:
    """(spreading factor, bandwidth in Hz) of an uplink data rate."""
    return _DATA_RATES[_check_dr(region, dr)][dr]


def max_payload(region: str, dr: int, repeater: bool = True) -> int:
    """Largest application payload N (FRMPayload bytes, no FOpts) at this data rate."""
    key = _check_dr(region, dr)
    table = _MAX_PAYLOAD if repeater else _MAX_PAYLOAD_NO_REPEATER
    return table[key][dr]


def frame_airtime(payload_len: int, region: str, dr: int, uplink: bool = True) -> float:
    """Time on air of a LoRaWAN frame carrying payload_len application bytes.

    Uplinks carry the PHY payload CRC, downlinks do not (LoRaWAN 1.0.x §4)."""
    if payload_len > max_payload(region, dr):
        raise ValueError("%d application bytes exceed the %s DR%d limit of %d"
                         % (payload_len, region_name(region), dr, max_payload(region, dr)))
    sf, bw = dr_params(region, dr)
    return time_on_air(payload_len + FRAME_OVERHEAD, sf, bw, crc=uplink)


class DutyCycle:
    """Per-sub-band duty-cycle budgets of one transmitter (device, gateway, B's radio),
    under one of dutycycle.POLICIES: per-frame (after a frame of airtime T that starts at
    t the sub-band is closed until t + T/dc), etsi-hour or lmn-credits (an hourly budget,
    so a burst may go at once). Each transmitter keeps its own instance."""

    def __init__(self, limits: Mapping[str, float] | None = None,
                 policy: str = dutycycle.PER_FRAME) -> None:
        if limits is None:
            limits = {name: b.duty for name, b in EU868_SUBBANDS.items()}
        for name, dc in limits.items():
            if not 0.0 < dc <= 1.0:
                raise ValueError("duty cycle of sub-band %s must be in (0, 1], not %r"
                                 % (name, dc))
        self.limits = dict(limits)
        self.policy = dutycycle.check_policy(policy)
        self._bands: dict[str, dutycycle.PerFrame | dutycycle.HourWindow
                          | dutycycle.TimeCredits] = {}

    def _band(self, band: str) -> dutycycle.PerFrame | dutycycle.HourWindow | dutycycle.TimeCredits:
        if band not in self.limits:
            raise ValueError("unknown sub-band %r; choose one of: %s"
                             % (band, ", ".join(self.limits)))
        if band not in self._bands:
            self._bands[band] = dutycycle.budget(self.policy, self.limits[band])
        return self._bands[band]

    def wait(self, now: float, band: str, airtime: float = 0.0) -> float:
        """Seconds from now until a frame of this airtime may start in the sub-band."""
        return self._band(band).wait(now, airtime)

    def record(self, now: float, band: str, airtime: float) -> None:
        """A frame of this airtime started at now in this sub-band."""
        if airtime < 0:
            raise ValueError("airtime must not be negative")
        self._band(band).record(now, airtime)

    def earliest(self, now: float, bands: Iterable[str],
                 airtime: float = 0.0) -> tuple[str, float]:
        """The sub-band among bands where a frame of this airtime may start first, and the
        wait for it (ties: first)."""
        best: tuple[str, float] | None = None
        for band in bands:
            w = self.wait(now, band, airtime)
            if best is None or w < best[1]:
                best = (band, w)
        if best is None:
            raise ValueError("no sub-band to choose from")
        return best
