# airshake_tools.linkemu.cellular: the NB-IoT and LTE-M link parameters: one-way latency,
# uplink/downlink rates, IP/UDP overhead and the radio wake (RRC setup) delay. Owns the
# numbers and the time one datagram takes; the scheduling is in model.py.
#
# Sources (public; indicative values for a device in good coverage, not a worst case):
# - Latency. GSMA white paper "3GPP Low Power Wide Area Technologies" (2016), comparison
#   table: LTE-M 10-15 ms, NB-IoT 1.6-10 s (EC-GSM-IoT 700 ms-2 s). 3GPP TR 45.820
#   (cellular IoT study) sets <= 10 s for an exception report at 164 dB MCL, the far
#   end of NB-IoT coverage. Field measurement: Ugwuanyi, Paul, Irvine, "Survey of IoT for
#   Developing Countries: Performance Analysis of LoRaWAN and Cellular NB-IoT Networks",
#   Electronics 10(18):2224 (2021): 837 ms measured NB-IoT latency.
#   Model: NB-IoT 0.8 s one way (the measurement, below GSMA's 1.6 s lower bound which
#   includes connection setup, modelled separately here); LTE-M 0.05 s one way (the
#   GSMA radio figure plus an assumed 35 ms of core network and Internet).
# - Rates. 3GPP TS 36.306 UE categories: Cat-NB1 (Rel-13) and Cat-M1 transport blocks;
#   peak rates as module datasheets state them: Cat-NB1 27.2 kbit/s down and 62.5 kbit/s
#   up (multi-tone), Cat-M1 in half-duplex FDD 300 kbit/s down and 375 kbit/s up.
#   Sustained rates are lower (scheduling gaps, repetitions); for airshake's datagrams
#   (tens to hundreds of bytes) the latency dominates anyway.
# - Wake. A device in idle mode (RRC released after the network's inactivity timer,
#   commonly 10-20 s) first runs random access and RRC connection setup. ASSUMED values,
#   not from a cited measurement: NB-IoT 1.5 s, LTE-M 0.2 s, idle after 20 s. A
#   downlink to an idle device pays the same (paging, then setup).
# - Overhead. Every datagram carries 20 bytes of IPv4 and 8 of UDP header; they ARE
#   counted in the time on the air (no header compression, no Non-IP Data Delivery).
from __future__ import annotations

from dataclasses import dataclass

IP_UDP_OVERHEAD = 28


@dataclass(frozen=True)
class CellularParams:
    name: str
    latency: float            # one-way, after the datagram is on the air (s)
    uplink_bps: float
    downlink_bps: float
    wake_delay: float         # RRC connection setup from idle (s)
    idle_after: float         # RRC inactivity before the device is idle again (s)
    overhead: int = IP_UDP_OVERHEAD

    def airtime(self, payload_len: int, direction: str = "up") -> float:
        """Seconds to put one UDP datagram of payload_len bytes on the air."""
        if direction not in ("up", "down"):
            raise ValueError("direction must be 'up' or 'down', not %r" % (direction,))
        if payload_len < 0:
            raise ValueError("payload length must not be negative")
        rate = self.uplink_bps if direction == "up" else self.downlink_bps
        return (payload_len + self.overhead) * 8 / rate


NBIOT = CellularParams("nbiot", latency=0.8, uplink_bps=62_500, downlink_bps=27_200,
                       wake_delay=1.5, idle_after=20.0)
LTEM = CellularParams("ltem", latency=0.05, uplink_bps=375_000, downlink_bps=300_000,
                      wake_delay=0.2, idle_after=20.0)
