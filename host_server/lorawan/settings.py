# host_server.lorawan.settings: the LoRaWAN settings of server B (`airshake server
# --lorawan chirpstack|tts --mqtt URL --application ID ...`, or the same names in the
# TOML [server] table) and their checks. host_server.server_b.config reads the values and
# calls check() once; every problem is one UserError line. The MQTT password comes from
# --mqtt-password-file, else $AIRSHAKE_MQTT_PASSWORD; it is never logged.
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from host_server.errors import UserError

KINDS = ("chirpstack", "tts")          # no import of .formats here: every CLI start reads
MARSHALERS = ("json", "protobuf")      # this module, and protobuf is slow to load

PASSWORD_ENV = "AIRSHAKE_MQTT_PASSWORD"
DEFAULT_FPORT = 10            # the boards' LORAWAN["port"] default (boards/esp32_rak3172.py)
CLASS_A_MTU = 51              # EU868 DR0-2 payload limit: B's fragments fit any EU868 DR
# name -> (type, default): host_server.server_b.config adds them to its settings
SCALARS: dict[str, tuple[type, object]] = {
    "lorawan": (str, ""), "mqtt": (str, ""), "application": (str, ""), "tenant": (str, ""),
    "mqtt_user": (str, ""), "mqtt_password_file": (str, ""), "mqtt_ca": (str, ""),
    "mqtt_cert": (str, ""), "mqtt_key": (str, ""),
    "fport": (int, DEFAULT_FPORT), "marshaler": (str, "json"),
}
RANGES = {"fport": (1, 223)}
# relative to the config file's directory when given there
PATHS = ("mqtt_password_file", "mqtt_ca", "mqtt_cert", "mqtt_key")


@dataclass(frozen=True)
class LorawanConfig:
    kind: str                    # chirpstack | tts
    host: str
    port: int
    tls: bool
    application: str
    tenant: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""          # a client certificate (ChirpStack's per-application one)
    key_file: str = ""
    fport: int = DEFAULT_FPORT
    marshaler: str = "json"

    @property
    def url(self) -> str:
        """The broker without credentials (for logs)."""
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", self.host, self.port)


def check(values: dict[str, object], given: set[str]) -> LorawanConfig | None:
    """The LorawanConfig of these settings (None without lorawan); with lorawan, mtu and
    fragment_resend default to the class A values unless given."""
    kind = str(values.get("lorawan") or "")
    if not kind:
        stray = [n for n in ("mqtt", "application", "tenant", "mqtt_user") if values.get(n)]
        if stray:
            raise UserError(f"setting {stray[0]} needs lorawan: add --lorawan chirpstack or "
                            "--lorawan tts")
        return None
    if kind not in KINDS:
        raise UserError(f"setting lorawan = {kind!r}: use chirpstack or tts")
    if values.get("marshaler") not in MARSHALERS:
        raise UserError(f"setting marshaler = {values.get('marshaler')!r}: use json or protobuf")
    if kind == "tts" and values.get("marshaler") != "json":
        raise UserError("marshaler protobuf is ChirpStack's only: The Things Stack's MQTT "
                        "server speaks JSON")
    if int(str(values.get("workers") or 1)) > 1:
        raise UserError("--lorawan runs in one B process (one MQTT subscription): leave "
                        "--workers at 1")
    url = str(values.get("mqtt") or "")
    if not url:
        raise UserError("--lorawan needs the broker: --mqtt mqtt://HOST:1883 (or "
                        "mqtts://HOST:8883 with --mqtt-ca FILE)")
    host, port, tls = _broker(url)
    app = str(values.get("application") or "")
    if not app or "/" in app or "+" in app or "#" in app:
        raise UserError("--lorawan needs --application ID: the application's ID in "
                        + ("ChirpStack (a UUID, on its page in the web interface)"
                           if kind == "chirpstack" else "The Things Stack (its application ID)")
                        + ("" if not app else f"; {app!r} has a character MQTT topics forbid"))
    if kind == "chirpstack" and values.get("tenant"):
        raise UserError("setting tenant is The Things Stack's (v3/APP@TENANT/...): ChirpStack "
                        "topics name the application only")
    ca_file = str(values.get("mqtt_ca") or "")
    if ca_file and not Path(ca_file).is_file():
        raise UserError(f"MQTT CA file {ca_file} does not exist: give the PEM file of the CA "
                        "that signed the broker's certificate (--mqtt-ca)")
    cert, key = str(values.get("mqtt_cert") or ""), str(values.get("mqtt_key") or "")
    if bool(cert) != bool(key):
        raise UserError("a client certificate needs both --mqtt-cert FILE and --mqtt-key FILE")
    for path, flag in ((ca_file, "--mqtt-ca"), (cert, "--mqtt-cert"), (key, "--mqtt-key")):
        if path and not tls:
            raise UserError(f"{flag} needs an mqtts:// broker URL")
        if path and not Path(path).is_file():
            raise UserError(f"{flag} {path} does not exist")
    if "mtu" not in given:
        values["mtu"] = CLASS_A_MTU
    if "fragment_resend" not in given:
        values["fragment_resend"] = 1
    return LorawanConfig(kind, host, port, tls, app, str(values.get("tenant") or ""),
                         str(values.get("mqtt_user") or ""),
                         _password(str(values.get("mqtt_password_file") or "")), ca_file,
                         cert, key,
                         int(str(values.get("fport") or DEFAULT_FPORT)),
                         str(values.get("marshaler") or "json"))


def _broker(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise UserError(f"--mqtt {url!r} is not a broker URL: write mqtt://HOST:1883 or "
                        "mqtts://HOST:8883")
    if parts.username or parts.password:
        raise UserError("--mqtt: put no credentials in the URL; use --mqtt-user and "
                        f"--mqtt-password-file (or ${PASSWORD_ENV})")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise UserError(f"--mqtt {url!r}: the port is not a number from 1 to 65535") from None
    return parts.hostname, port, tls


def _password(path: str) -> str:
    if path:
        try:
            text = Path(path).read_text().strip()
        except OSError as e:
            raise UserError(f"cannot read the MQTT password file {path} ({e.strerror}): "
                            "check --mqtt-password-file") from None
        if not text:
            raise UserError(f"the MQTT password file {path} is empty")
        return text
    return os.environ.get(PASSWORD_ENV, "")
