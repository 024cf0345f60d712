# host_server.lorawan.formats: the MQTT topics and payloads of the two network servers'
# application integrations, both ways, and nothing else (no I/O):
#   ChirpStack v4  up:   application/<APP>/device/<DevEUI>/event/up   (integration.UplinkEvent)
#                  down: application/<APP>/device/<DevEUI>/command/down (integration.
#                        DownlinkCommand), JSON marshaler (protobuf JSON mapping), or the
#                        protobuf marshaler (binary) with marshaler="protobuf"
#                  sent: application/<APP>/device/<DevEUI>/event/txack (TxAckEvent)
#   TTS v3         up:   v3/<APP>@<TENANT>/devices/<DEVICE-ID>/up  (ApplicationUp JSON:
#                        end_device_ids, uplink_message.{f_port, f_cnt, frm_payload})
#                  down: v3/<APP>@<TENANT>/devices/<DEVICE-ID>/down/replace (or /push):
#                        {"downlinks": [{"f_port", "frm_payload", "priority"}]}
# ChirpStack's messages are chirpstack_api's types (google.protobuf.json_format), so a
# field ChirpStack renames fails here, not on the air. The Things Stack's types are not on
# PyPI: its JSON is written out below after its documentation (integrations/mqtt).
# A payload that does not parse is an UplinkError (the caller logs one line and drops it).
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from google.protobuf import json_format
from chirpstack_api import integration

from host_server.lorawan.settings import KINDS, MARSHALERS  # noqa: F401  (re-exported)


class UplinkError(ValueError):
    """An MQTT message on the uplink topic that is not an uplink B can use."""


@dataclass(frozen=True)
class Uplink:
    device: str          # its name in downlink topics: DevEUI (ChirpStack), device ID (TTS)
    f_cnt: int
    f_port: int          # 0: no FRMPayload (an uplink that only opened the receive windows)
    payload: bytes


@dataclass(frozen=True)
class Topics:
    """The topic names of one application on one network server."""
    kind: str
    application: str
    tenant: str = ""     # TTS: "ttn" on The Things Network; "" on The Things Stack Open Source

    @property
    def _tts_app(self) -> str:
        return f"{self.application}@{self.tenant}" if self.tenant else self.application

    def uplinks(self) -> str:
        """The subscription for every device's uplinks."""
        if self.kind == "chirpstack":
            return f"application/{self.application}/device/+/event/up"
        return f"v3/{self._tts_app}/devices/+/up"

    def downlink(self, device: str, replace: bool = True) -> str:
        if self.kind == "chirpstack":
            return f"application/{self.application}/device/{device}/command/down"
        return f"v3/{self._tts_app}/devices/{device}/down/{'replace' if replace else 'push'}"

    def txacks(self) -> str | None:
        """ChirpStack's report that a downlink left the gateway (TxAckEvent)."""
        if self.kind == "chirpstack":
            return f"application/{self.application}/device/+/event/txack"
        return None

    def txack(self, device: str) -> str:
        return f"application/{self.application}/device/{device}/event/txack"

    def downlinks(self) -> list[str]:
        """What a network server (the stand-in) subscribes to."""
        if self.kind == "chirpstack":
            return [f"application/{self.application}/device/+/command/down"]
        return [f"v3/{self._tts_app}/devices/+/down/push",
                f"v3/{self._tts_app}/devices/+/down/replace"]

    def device_of(self, topic: str) -> str:
        parts = topic.split("/")     # the same place in both: .../<device>/...
        return parts[3] if len(parts) > 4 else ""


# -- ChirpStack v4 -----------------------------------------------------------------------
def chirpstack_uplink(body: bytes, marshaler: str = "json") -> Uplink:
    event = integration.UplinkEvent()
    try:
        if marshaler == "protobuf":
            event.ParseFromString(body)
        else:
            json_format.Parse(body, event, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as e:   # DecodeError is a ValueError
        raise UplinkError(f"not a ChirpStack UplinkEvent ({str(e)[:80]})") from None
    dev_eui = event.device_info.dev_eui.lower()
    if len(dev_eui) != 16:
        raise UplinkError("ChirpStack uplink without a DevEUI in deviceInfo")
    return Uplink(dev_eui, event.f_cnt, event.f_port, bytes(event.data))


def chirpstack_downlink(dev_eui: str, f_port: int, payload: bytes,
                        marshaler: str = "json") -> bytes:
    cmd = integration.DownlinkCommand(dev_eui=dev_eui, confirmed=False, f_port=f_port,
                                      data=payload)
    if marshaler == "protobuf":
        return cmd.SerializeToString()
    return json_format.MessageToJson(cmd, indent=None).encode()


def chirpstack_parse_downlink(body: bytes, marshaler: str = "json") -> tuple[str, int, bytes]:
    """(DevEUI, FPort, payload) of a command/down message (what the stand-in reads)."""
    cmd = integration.DownlinkCommand()
    if marshaler == "protobuf":
        cmd.ParseFromString(body)
    else:
        json_format.Parse(body, cmd, ignore_unknown_fields=True)
    return cmd.dev_eui.lower(), cmd.f_port, bytes(cmd.data)


def chirpstack_make_uplink(application: str, dev_eui: str, f_cnt: int, f_port: int,
                           payload: bytes, dr: int, gateways: int = 1,
                           marshaler: str = "json") -> bytes:
    """An UplinkEvent as ChirpStack publishes it (what the stand-in sends)."""
    event = integration.UplinkEvent(deduplication_id="%s-%d" % (dev_eui, f_cnt),
                                    dev_addr=dev_eui[-8:], dr=dr, f_cnt=f_cnt, f_port=f_port,
                                    data=payload)
    event.time.GetCurrentTime()
    info = event.device_info
    info.application_id = application
    info.dev_eui = dev_eui
    info.device_name = "dev-" + dev_eui
    for n in range(gateways):
        rx = event.rx_info.add()
        rx.gateway_id = "%016x" % (0xAA55000000000000 + n)
        rx.rssi, rx.snr = -60 - 7 * n, 8.0 - n
    event.tx_info.frequency = 868100000
    if marshaler == "protobuf":
        return event.SerializeToString()
    return json_format.MessageToJson(event, indent=None).encode()


def chirpstack_make_txack(application: str, dev_eui: str, f_cnt_down: int) -> bytes:
    event = integration.TxAckEvent(f_cnt_down=f_cnt_down, gateway_id="aa55000000000000")
    event.time.GetCurrentTime()
    event.device_info.application_id = application
    event.device_info.dev_eui = dev_eui
    return json_format.MessageToJson(event, indent=None).encode()


# -- The Things Stack v3 -----------------------------------------------------------------
def tts_uplink(body: bytes) -> Uplink:
    try:
        msg = json.loads(body)
        ids = msg["end_device_ids"]
        device = str(ids["device_id"])
        up = msg["uplink_message"]
        f_port = int(up.get("f_port", 0))
        payload = base64.b64decode(up.get("frm_payload", ""), validate=True)
        f_cnt = int(up.get("f_cnt", 0))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise UplinkError("not a The Things Stack uplink (end_device_ids, uplink_message)") \
            from None
    if not device:
        raise UplinkError("The Things Stack uplink without a device_id")
    return Uplink(device, f_cnt, f_port, payload)


def tts_downlink(f_port: int, payload: bytes) -> bytes:
    return json.dumps({"downlinks": [{"f_port": f_port,
                                      "frm_payload": base64.b64encode(payload).decode(),
                                      "priority": "NORMAL"}]}).encode()


def tts_parse_downlink(body: bytes) -> list[tuple[int, bytes]]:
    return [(int(d["f_port"]), base64.b64decode(d.get("frm_payload", "")))
            for d in json.loads(body)["downlinks"]]


def tts_make_uplink(application: str, tenant: str, device: str, dev_eui: str, f_cnt: int,
                    f_port: int, payload: bytes, dr: int, gateways: int = 1) -> bytes:
    up: dict = {"f_cnt": f_cnt,
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-%d" % n},
                                 "rssi": -60 - 7 * n, "snr": 8.0 - n} for n in range(gateways)],
                "settings": {"data_rate": {"lora": {"spreading_factor": 12 - dr,
                                                    "bandwidth": 125000}},
                             "frequency": "868100000"}}
    if f_port:
        up["f_port"] = f_port
        up["frm_payload"] = base64.b64encode(payload).decode()
    return json.dumps({
        "end_device_ids": {"device_id": device,
                           "application_ids": {"application_id": application},
                           "dev_eui": dev_eui.upper()},
        "correlation_ids": ["as:up:%s-%d" % (device, f_cnt)],
        "uplink_message": up}).encode()


def parse_uplink(kind: str, body: bytes, marshaler: str = "json") -> Uplink:
    return chirpstack_uplink(body, marshaler) if kind == "chirpstack" else tts_uplink(body)


def make_downlink(kind: str, device: str, f_port: int, payload: bytes,
                  marshaler: str = "json") -> bytes:
    if kind == "chirpstack":
        return chirpstack_downlink(device, f_port, payload, marshaler)
    return tts_downlink(f_port, payload)
