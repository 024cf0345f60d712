# gateway/gwmp.py: the gateway side of the Semtech UDP packet-forwarder protocol v2 (GWMP,
# Lora-net/packet_forwarder PROTOCOL.TXT), in the MicroPython subset: build PUSH_DATA
# (rxpk, stat), PULL_DATA and TX_ACK; read PUSH_ACK, PULL_ACK and PULL_RESP (txpk).
# A datagram that is not GWMP v2 from the server reads as kind None (ignored, counted).
import binascii
import json
import os

VERSION = 2
PUSH_DATA = 0
PUSH_ACK = 1
PULL_DATA = 2
PULL_RESP = 3
PULL_ACK = 4
TX_ACK = 5


def _head(kind, token=None):
    if token is None:
        token = int.from_bytes(os.urandom(2), "big")
    return bytes((VERSION, (token >> 8) & 0xFF, token & 0xFF, kind))


def b64(data):
    return binascii.b2a_base64(data).decode().strip()


def rxpk(payload, tmst, freq_khz, sf, bw, cr, rssi, snr, crc_ok=True):
    """One rxpk object (PROTOCOL.TXT §4); bw as the lora driver's string, "125"."""
    return {"tmst": tmst, "chan": 0, "rfch": 0, "freq": freq_khz / 1000, "stat":
            1 if crc_ok else -1, "modu": "LORA", "datr": "SF%dBW%s" % (sf, bw),
            "codr": "4/%d" % cr, "rssi": rssi or 0, "lsnr": snr or 0, "size": len(payload),
            "data": b64(payload)}


def push_data(eui, packets=None, stat=None):
    body = {}
    if packets:
        body["rxpk"] = packets
    if stat is not None:
        body["stat"] = stat
    return _head(PUSH_DATA) + eui + json.dumps(body).encode()


def pull_data(eui):
    return _head(PULL_DATA) + eui


def tx_ack(token, eui, error="NONE"):
    return _head(TX_ACK, token) + eui + json.dumps({"txpk_ack": {"error": error}}).encode()


def read(data):
    """(kind, token, txpk or None); kind None for anything that is not GWMP v2."""
    if len(data) < 4 or data[0] != VERSION:
        return None, 0, None
    token = (data[1] << 8) | data[2]
    kind = data[3]
    if kind in (PUSH_ACK, PULL_ACK):
        return kind, token, None
    if kind != PULL_RESP:
        return None, token, None
    try:
        txpk = json.loads(data[4:])["txpk"]
        txpk["payload"] = binascii.a2b_base64(txpk["data"])
    except (ValueError, KeyError, TypeError):
        return None, token, None
    return kind, token, txpk
