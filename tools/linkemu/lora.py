# airshake_tools.linkemu.lora: LoRa physical-layer time on air, per Semtech AN1200.13
# ("LoRa Modem Designer's Guide", §4) and the SX1276/77/78/79 datasheet §4.1.1.7, which
# give the same formula. Owns only the arithmetic; regional rules live in lorawan.py.
#
#   T_sym      = 2^SF / BW
#   T_preamble = (n_preamble + 4.25) * T_sym
#   n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
#   T_packet   = T_preamble + n_payload * T_sym
#
# PL payload bytes (0..255), IH = 1 for implicit header, CRC = 1 when the payload CRC is
# on, DE = 1 with low-data-rate optimisation, CR = 1..4 for coding rates 4/5..4/8.
# Checked values (tests/host/test_linkemu.py): 10 bytes, BW125, CR4/5, 8 symbols of
# preamble, explicit header, CRC on: SF7 41.216 ms, SF12 (DE on) 991.232 ms.
from __future__ import annotations

MAX_PAYLOAD = 255
# Bandwidths of the SX127x family (Hz); LoRaWAN uses 125, 250 and 500 kHz.
BANDWIDTHS = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)
# The datasheet mandates low-data-rate optimisation when a symbol lasts 16 ms or more
# (SF11 and SF12 at 125 kHz, SF12 at 250 kHz).
LDRO_SYMBOL_TIME = 0.016


def symbol_time(sf: int, bw_hz: int = 125000) -> float:
    """Duration of one LoRa symbol in seconds."""
    _check_sf_bw(sf, bw_hz)
    return (1 << sf) / bw_hz


def ldro_required(sf: int, bw_hz: int = 125000) -> bool:
    """Whether low-data-rate optimisation is on in the datasheet's rule (T_sym >= 16 ms)."""
    return symbol_time(sf, bw_hz) >= LDRO_SYMBOL_TIME


def payload_symbols(payload_len: int, sf: int, bw_hz: int = 125000, cr: int = 1,
                    explicit_header: bool = True, crc: bool = True,
                    ldro: bool | None = None) -> int:
    """Number of symbols after the preamble (header, payload and CRC)."""
    _check_sf_bw(sf, bw_hz)
    if isinstance(payload_len, bool) or not isinstance(payload_len, int) \
            or not 0 <= payload_len <= MAX_PAYLOAD:
        raise ValueError("LoRa payload must be 0..%d bytes, not %r" % (MAX_PAYLOAD, payload_len))
    if cr not in (1, 2, 3, 4):
        raise ValueError("coding rate must be 1..4 (4/5..4/8), not %r" % (cr,))
    if sf == 6 and explicit_header:
        raise ValueError("SF6 works only with an implicit header (AN1200.13)")
    de = ldro_required(sf, bw_hz) if ldro is None else bool(ldro)
    ih = 0 if explicit_header else 1
    num = 8 * payload_len - 4 * sf + 28 + 16 * int(crc) - 20 * ih
    den = 4 * (sf - 2 * int(de))
    return 8 + max(-(-num // den) * (cr + 4), 0)     # -(-a // b) is an exact integer ceil


def time_on_air(payload_len: int, sf: int, bw_hz: int = 125000, cr: int = 1,
                preamble: int = 8, explicit_header: bool = True, crc: bool = True,
                ldro: bool | None = None) -> float:
    """Seconds on air of one LoRa frame of payload_len bytes (AN1200.13).

    cr: 1..4 for 4/5..4/8; ldro: None chooses it as the datasheet does (T_sym >= 16 ms)."""
    if isinstance(preamble, bool) or not isinstance(preamble, int) or not 6 <= preamble <= 65535:
        raise ValueError("preamble must be 6..65535 symbols, not %r" % (preamble,))
    n = payload_symbols(payload_len, sf, bw_hz, cr, explicit_header, crc, ldro)
    ts = symbol_time(sf, bw_hz)
    return (preamble + 4.25 + n) * ts


def bit_rate(sf: int, bw_hz: int = 125000, cr: int = 1) -> float:
    """Nominal LoRa bit rate SF * BW / 2^SF * 4/(4+CR) in bit/s (AN1200.22)."""
    return sf * (bw_hz / (1 << sf)) * 4 / (4 + cr)


def _check_sf_bw(sf: int, bw_hz: int) -> None:
    if isinstance(sf, bool) or not isinstance(sf, int) or not 6 <= sf <= 12:
        raise ValueError("spreading factor must be 6..12, not %r" % (sf,))
    if bw_hz not in BANDWIDTHS:
        raise ValueError("bandwidth %r Hz is not a LoRa bandwidth; choose one of: %s"
                         % (bw_hz, ", ".join(str(b) for b in BANDWIDTHS)))
