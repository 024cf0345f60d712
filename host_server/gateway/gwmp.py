# host_server.gateway.gwmp: the Semtech UDP packet-forwarder protocol, version 2 (GWMP,
# Lora-net/packet_forwarder PROTOCOL.TXT): parse what gateways send (PUSH_DATA with
# rxpk, PULL_DATA, TX_ACK) and build what the server sends (PUSH_ACK, PULL_ACK,
# PULL_RESP with one txpk). Pure functions, no I/O. Every malformed datagram raises a
# subclass of GwmpError naming what is wrong (the bridge counts them by class name);
# nothing else ever escapes parse().
#   header: version (2) | token (2 bytes) | identifier | [gateway EUI (8)] | [JSON]
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

VERSION = 2
PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_RESP, PULL_ACK, TX_ACK = 0, 1, 2, 3, 4, 5
MAX_DATAGRAM = 65507
# TX_ACK "error" values of the reference packet forwarder (PROTOCOL.TXT v2, §5.5)
TX_ERRORS = ("NONE", "TOO_LATE", "TOO_EARLY", "COLLISION_PACKET", "COLLISION_BEACON",
             "TX_FREQ", "TX_POWER", "GPS_UNLOCKED")
_DATR = re.compile(r"^SF(\d{1,2})BW(\d{2,3})$")


class GwmpError(ValueError):
    """A datagram that is not valid GWMP v2; str() says what is wrong."""


class BadHeader(GwmpError):
    pass


class BadVersion(GwmpError):
    pass


class UnknownIdentifier(GwmpError):
    pass


class BadJson(GwmpError):
    pass


class BadPacket(GwmpError):
    """An rxpk or txpk object with a missing or ill-typed field."""


@dataclass(frozen=True)
class Rxpk:
    """One packet a gateway heard (the fields the bridge uses)."""
    data: bytes
    tmst: int               # the gateway's internal µs counter at the end of reception
    freq: float             # MHz
    datr: str               # "SF7BW125"
    codr: str               # "4/5"
    stat: int               # 1 CRC ok, -1 CRC bad, 0 no CRC
    rssi: float
    lsnr: float
    modu: str = "LORA"


@dataclass(frozen=True)
class Txpk:
    data: bytes
    freq: float
    datr: str
    codr: str
    powe: int
    ipol: bool
    imme: bool = True
    tmst: int | None = None
    rfch: int = 0
    prea: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"imme": self.imme}
        if not self.imme:
            out["tmst"] = self.tmst
        out.update({"freq": round(self.freq, 6), "rfch": self.rfch, "powe": self.powe,
                    "modu": "LORA", "datr": self.datr, "codr": self.codr,
                    "ipol": self.ipol, "size": len(self.data),
                    "data": base64.b64encode(self.data).decode()})
        if self.prea is not None:
            out["prea"] = self.prea
        return out


@dataclass
class Datagram:
    """A parsed gateway -> server datagram."""
    kind: int
    token: int
    eui: bytes = b""
    rxpk: list[Rxpk] = field(default_factory=list)
    stat: dict[str, Any] | None = None
    tx_error: str | None = None        # TX_ACK: "NONE" when the gateway took the packet


def parse(data: bytes) -> Datagram:
    """A datagram from a gateway: PUSH_DATA, PULL_DATA or TX_ACK. GwmpError otherwise."""
    if len(data) < 12:
        raise BadHeader("datagram of %d bytes is shorter than a GWMP header with an EUI"
                        % len(data))
    if data[0] != VERSION:
        raise BadVersion("protocol version %d (GWMP v2 expected)" % data[0])
    token = int.from_bytes(data[1:3], "big")
    kind = data[3]
    if kind not in (PUSH_DATA, PULL_DATA, TX_ACK):
        raise UnknownIdentifier("identifier 0x%02x is not one a gateway sends" % kind)
    eui = bytes(data[4:12])
    out = Datagram(kind, token, eui)
    body = data[12:]
    if kind == PULL_DATA:
        if body:
            raise BadHeader("PULL_DATA with %d trailing bytes" % len(body))
        return out
    if kind == TX_ACK:
        obj = _json(body) if body.strip(b"\x00 \r\n") else {}
        ack = obj.get("txpk_ack", {})
        if not isinstance(ack, dict):
            raise BadJson("txpk_ack is not an object")
        err = ack.get("error", "NONE")
        if not isinstance(err, str):
            raise BadJson("txpk_ack.error is not a string")
        out.tx_error = err
        return out
    obj = _json(body)
    rx = obj.get("rxpk", [])
    if not isinstance(rx, list):
        raise BadJson("rxpk is not an array")
    out.rxpk = [_rxpk(p) for p in rx]
    stat = obj.get("stat")
    if stat is not None and not isinstance(stat, dict):
        raise BadJson("stat is not an object")
    out.stat = stat
    return out


def _json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(bytes(body).rstrip(b"\x00").decode("utf-8"))
    except RecursionError:
        raise BadJson("JSON payload nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise BadJson("JSON payload does not parse: %s" % e) from None
    if not isinstance(obj, dict):
        raise BadJson("JSON payload is not an object")
    return obj


def _field(p: dict[str, Any], name: str, types: tuple[type, ...], default: Any = None) -> Any:
    v = p.get(name, default)
    if v is None or isinstance(v, bool) or not isinstance(v, types):
        raise BadPacket("rxpk.%s missing or of the wrong type" % name)
    return v


def _rxpk(p: Any) -> Rxpk:
    if not isinstance(p, dict):
        raise BadPacket("rxpk entry is not an object")
    raw = _field(p, "data", (str,))
    try:
        payload = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadPacket("rxpk.data is not base64") from None
    size = p.get("size")
    if size is not None and size != len(payload):
        raise BadPacket("rxpk.size %r but data holds %d bytes" % (size, len(payload)))
    return Rxpk(data=payload, tmst=int(_field(p, "tmst", (int,))) & 0xFFFFFFFF,
                freq=float(_field(p, "freq", (int, float))),
                datr=str(_field(p, "datr", (str, int))),
                codr=str(p.get("codr") or ""), stat=int(_field(p, "stat", (int,), 1)),
                rssi=float(_field(p, "rssi", (int, float), 0)),
                lsnr=float(_field(p, "lsnr", (int, float), 0.0)),
                modu=str(p.get("modu") or "LORA"))


def datr_parts(datr: str) -> tuple[int, int]:
    """"SF7BW125" -> (7, 125); ValueError for anything else."""
    m = _DATR.match(datr)
    if not m:
        raise ValueError("LoRa data rate %r is not of the form SF7BW125" % datr)
    return int(m.group(1)), int(m.group(2))


def push_ack(token: int) -> bytes:
    return bytes((VERSION,)) + token.to_bytes(2, "big") + bytes((PUSH_ACK,))


def pull_ack(token: int) -> bytes:
    return bytes((VERSION,)) + token.to_bytes(2, "big") + bytes((PULL_ACK,))


def pull_resp(token: int, txpk: Txpk) -> bytes:
    body = json.dumps({"txpk": txpk.to_json()}, separators=(",", ":")).encode()
    return bytes((VERSION,)) + token.to_bytes(2, "big") + bytes((PULL_RESP,)) + body
