# airshake_tools.linkemu.profiles: the named link profiles (what a frame costs on each
# kind of link) and get_profile(). A profile is data; model.Link does the scheduling.
#
# Raw LoRa profiles (lora-sf7, lora-sf12) are point-to-point LoRa between the device and
# a LoRa radio at B, on 868.1 MHz (EU868 sub-band g1). The 1 % duty cycle applies to
# them as much as to LoRaWAN: it is the ETSI EN 300 220 rule for the sub-band, not a
# LoRaWAN rule, and it binds each transmitter (device and B's radio) separately.
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from airshake_tools.linkemu import cellular, dutycycle, lorawan
from airshake_tools.linkemu.lora import MAX_PAYLOAD, time_on_air

Kind = Literal["lora", "lorawan", "cellular", "ideal"]
# One-way delay between a LoRaWAN gateway and B (network server and backhaul): an
# ASSUMED round figure; B's answer must reach the gateway before RX1 opens.
LORAWAN_BACKHAUL = 0.05


@dataclass(frozen=True)
class Profile:
    name: str
    kind: Kind
    mtu: int                        # application bytes in one radio frame
    description: str
    latency: float = 0.0            # one-way delay added after the frame's airtime (s)
    sf: int = 0                     # LoRa: spreading factor (0 when not LoRa)
    bw_hz: int = 125000
    cr: int = 1                     # 1..4 = 4/5..4/8
    preamble: int = 8
    region: str = ""                # LoRaWAN: region and uplink data rate
    dr: int = -1
    duty_cycle: bool = False        # EU868 sub-band duty cycles bind the transmitters
    duty_policy: str = dutycycle.PER_FRAME   # how (dutycycle.POLICIES); Link may override
    class_a: bool = False           # LoRaWAN class A receive windows
    cell: cellular.CellularParams | None = None

    def airtime(self, payload_len: int, direction: str = "up") -> float:
        """Seconds on the air of one frame carrying payload_len application bytes
        (LoRaWAN: plus the 13 bytes of MAC framing; cellular: plus IP/UDP headers)."""
        if direction not in ("up", "down"):
            raise ValueError("direction must be 'up' or 'down', not %r" % (direction,))
        if self.kind == "lora":
            return time_on_air(payload_len, self.sf, self.bw_hz, self.cr, self.preamble)
        if self.kind == "lorawan":
            return lorawan.frame_airtime(payload_len, self.region, self.dr,
                                         uplink=direction == "up")
        if self.kind == "cellular":
            assert self.cell is not None
            return self.cell.airtime(payload_len, direction)
        return 0.0

    def downlink_airtime(self, payload_len: int, dr: int) -> float:
        """LoRaWAN: airtime of a downlink sent at data rate dr (RX1 or RX2)."""
        return lorawan.frame_airtime(payload_len, self.region, dr, uplink=False)


def lora_profile(sf: int, name: str | None = None) -> Profile:
    """Raw LoRa, EU868 868.1 MHz, BW125, CR4/5, 8-symbol preamble, explicit header, CRC."""
    return Profile(name or "lora-sf%d" % sf, "lora", MAX_PAYLOAD,
                   "raw LoRa SF%d/125 kHz at 868.1 MHz, 1%% duty cycle per transmitter" % sf,
                   sf=sf, duty_cycle=True)


def lorawan_profile(region: str, dr: int, name: str | None = None) -> Profile:
    """LoRaWAN class A at one uplink data rate; only EU868 is modelled as a link."""
    key = lorawan.region_name(region)
    if key != "EU868":
        raise ValueError("only EU868 LoRaWAN links are modelled (US915 has tables only)")
    sf, bw = lorawan.dr_params(key, dr)
    return Profile(name or "lorawan-%s-dr%d" % (key.lower(), dr), "lorawan",
                   lorawan.max_payload(key, dr),
                   "LoRaWAN %s DR%d (SF%d/%d kHz), class A, +%d bytes of MAC framing, "
                   "1%% duty cycle" % (key, dr, sf, bw // 1000, lorawan.FRAME_OVERHEAD),
                   latency=LORAWAN_BACKHAUL, sf=sf, bw_hz=bw, region=key, dr=dr,
                   duty_cycle=True, class_a=True)


def cellular_profile(params: cellular.CellularParams, description: str) -> Profile:
    # 1200 bytes: airshake's own ceiling for one datagram, below common cellular IP MTUs,
    # so a datagram is never fragmented by IP.
    return Profile(params.name, "cellular", 1200, description, latency=params.latency,
                   cell=params)


PROFILES: dict[str, Profile] = {p.name: p for p in (
    lora_profile(7),
    lora_profile(12),
    lorawan_profile("EU868", 0),
    cellular_profile(cellular.NBIOT, "NB-IoT (Cat-NB1): 0.8 s one way, 62.5/27.2 kbit/s "
                     "up/down, 1.5 s RRC setup after 20 s idle"),
    cellular_profile(cellular.LTEM, "LTE-M (Cat-M1): 50 ms one way, 375/300 kbit/s up/down, "
                     "0.2 s RRC setup after 20 s idle"),
    Profile("ideal", "ideal", 1500, "no delay, no loss, 1500-byte frames"),
)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError("unknown link profile %s; choose one of: %s"
                         % (name, ", ".join(PROFILES))) from None
