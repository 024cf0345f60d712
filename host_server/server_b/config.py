# host_server.server_b.config: ServerConfig, the settings of server B, built from command-line
# flags over the [server] table of a TOML file over defaults. Owns the names, defaults,
# types and range checks of every setting; loading the key and certificate files they
# name is host_server.server_b.keyfiles. Every problem is one UserError line.
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_server.config import load_section
from host_server.errors import UserError
from host_server.lorawan import settings as lorawan_settings

SECTION = "server"
STORE_SCHEMES = ("postgresql", "postgres", "ldap", "ldaps", "sqlite")
REPLIES = ("none", "ack")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Rate:
    """A token bucket: `rate` tokens per second, at most `burst` saved up."""
    rate: float
    burst: float

    def __str__(self) -> str:
        return f"{self.rate:g}:{self.burst:g}"


@dataclass(frozen=True)
class KeySpec:
    """B's static private key and its certificate C_B for one suite (files)."""
    suite: int
    key: Path
    cert: Path


@dataclass
class ServerConfig:
    ca_cert: Path
    keys: list[KeySpec] = field(default_factory=list)
    key_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8471
    cs_url: str = "http://127.0.0.1:8470"
    cs_token_file: str = ""          # the CS's reader.token (else $AIRSHAKE_CS_TOKEN)
    cs_token: str = field(default="", repr=False)   # read from cs_token_file; never logged
    db: Path | str = Path("airshake-b.db")   # SQLite path, or a postgresql:// URL
    window: int = 120
    id_len: int = 8
    cache_size: int = 10000
    cache_ttl: float = 3600.0
    negative_ttl: float = 60.0
    rate_per_source: Rate = Rate(20, 40)
    rate_per_id: Rate = Rate(2, 5)          # per (ID, source IP)
    rate_per_id_all: Rate = Rate(20, 40)    # per ID, all sources but its proven ones
    cs_timeout: float = 2.0
    try_later_s: int = 30
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9471
    reply: str = "ack"              # the firmware waits for it (firmware/README.md)
    instance: str = ""               # "" = hostname:bound port
    mtu: int = 1200
    fragment_resend: int = 0         # fragments sent at a time (first, per ack); 0 = all
    max_handshakes: int = 50000
    max_sessions: int = 100000
    replay_size: int = 100000
    revocation_poll: float = 30.0
    log_level: str = "info"
    session_max_age: int = 7 * 86400   # the core's session limit (PROTOCOL.md §5.5)
    store: str = ""                  # "" = the CS over HTTP; else postgresql://, ldap://...
    redis: str = ""                  # redis://host:port/db: state shared by B instances
    redis_timeout: float = 0.25      # seconds per Redis call before B counts it down
    workers: int = 1                 # B processes on one UDP port (SO_REUSEPORT)
    # set by the supervisor (host_server.server_b.workers) for each worker, never by the user
    worker_index: int = 0
    reuse_port: bool = False
    relay_group: str = ""
    accept_early: bool = False       # 0-RTT data (PROTOCOL.md §8: not KCI-resistant)
    rcvbuf: int = 4 * 1024 * 1024    # UDP receive buffer asked of the kernel (bytes)
    amplification: float = 10.0      # bytes sent / received to an unproven address
    duplicate_answers: int = 3       # answers to copies of one m1
    ids_sync: float = 60.0           # seconds between full reads of the CS's ID set
    # a LoRaWAN network server over MQTT (host_server.lorawan.settings; "" = UDP only)
    lorawan: str = ""
    mqtt: str = ""
    application: str = ""
    tenant: str = ""
    mqtt_user: str = ""
    mqtt_password_file: str = ""
    mqtt_ca: str = ""
    mqtt_cert: str = ""
    mqtt_key: str = ""
    fport: int = lorawan_settings.DEFAULT_FPORT
    marshaler: str = "json"
    lorawan_config: Any = field(default=None, repr=False)   # from lorawan_settings.check


# name -> (type, default) for the scalar settings; flags and TOML share these names
_SCALARS: dict[str, tuple[type, Any]] = {
    "host": (str, "127.0.0.1"), "port": (int, 8471), "cs_url": (str, "http://127.0.0.1:8470"),
    "cs_token_file": (str, ""),
    "db": (str, "airshake-b.db"), "window": (int, 120), "id_len": (int, 8),
    "cache_size": (int, 10000), "cache_ttl": (float, 3600.0), "negative_ttl": (float, 60.0),
    "cs_timeout": (float, 2.0), "try_later_s": (int, 30), "metrics_host": (str, "127.0.0.1"),
    "metrics_port": (int, 9471), "reply": (str, "ack"), "instance": (str, ""),
    "mtu": (int, 1200), "fragment_resend": (int, 0), "max_handshakes": (int, 50000),
    "max_sessions": (int, 100000),
    "replay_size": (int, 100000), "revocation_poll": (float, 30.0), "log_level": (str, "info"),
    "session_max_age": (int, 7 * 86400),
    "store": (str, ""), "redis": (str, ""), "redis_timeout": (float, 0.25), "workers": (int, 1),
    "accept_early": (bool, False), "rcvbuf": (int, 4 * 1024 * 1024),
    "amplification": (float, 10.0), "duplicate_answers": (int, 3), "ids_sync": (float, 60.0),
    **lorawan_settings.SCALARS,
}
# name -> (lowest, highest) allowed
_RANGES: dict[str, tuple[float, float]] = {
    "port": (0, 65535), "window": (1, 86400), "id_len": (4, 32), "cache_size": (0, 10**8),
    "cache_ttl": (1, 10**8), "negative_ttl": (0, 10**6), "cs_timeout": (0.05, 600),
    "try_later_s": (1, 65535), "metrics_port": (0, 65535), "mtu": (51, 65507),
    "fragment_resend": (0, 255),
    "max_handshakes": (16, 10**8), "max_sessions": (16, 10**8), "replay_size": (16, 10**9),
    "revocation_poll": (0.5, 86400), "session_max_age": (1, 10**8),
    "redis_timeout": (0.01, 10), "workers": (1, 64), "rcvbuf": (0, 1 << 30),
    "amplification": (1, 100), "duplicate_answers": (0, 100), "ids_sync": (1, 86400),
    **lorawan_settings.RANGES,
}


def _typed(name: str, value: Any, kind: type, origin: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise UserError(f"setting {name} must be true or false, not {value!r} ({origin}): "
                            "fix the value")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        what = {int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
        raise UserError(f"setting {name} must be {what}, not {value!r} ({origin}): "
                        "fix the value")
    lo_hi = _RANGES.get(name)
    number: Any = value
    if lo_hi and not lo_hi[0] <= number <= lo_hi[1]:
        raise UserError(f"setting {name} = {value} is out of range ({origin}): "
                        f"use {lo_hi[0]:g} .. {lo_hi[1]:g}")
    return value


def parse_rate(name: str, value: Any, origin: str) -> Rate:
    """A rate as "RATE:BURST", "RATE" (burst = 2 x rate), a number, or {rate, burst}."""
    try:
        if isinstance(value, Rate):
            return value
        if isinstance(value, dict):
            rate = float(value["rate"])
            burst = float(value.get("burst", 2 * rate))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rate, burst = float(value), 2 * float(value)
        elif isinstance(value, str):
            parts = value.split(":")
            if len(parts) > 2:
                raise ValueError(value)
            rate = float(parts[0])
            burst = float(parts[1]) if len(parts) == 2 else 2 * rate
        else:
            raise ValueError(value)
    except (KeyError, ValueError, TypeError):
        raise UserError(f"setting {name} = {value!r} is not a rate ({origin}): "
                        f"write RATE:BURST, e.g. 20:40 (per second)") from None
    if rate <= 0 or burst < 1:
        raise UserError(f"setting {name} = {value!r} ({origin}): the rate must be > 0 "
                        "and the burst >= 1")
    return Rate(rate, burst)


def _parse_key_flag(text: str) -> KeySpec:
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        raise UserError(f"--key {text!r} is not SUITE:KEYFILE:CERTFILE: "
                        "e.g. --key 0:server-suite0.key:server-suite0.der")
    return KeySpec(int(parts[0]), Path(parts[1]), Path(parts[2]))


def _parse_key_table(entry: Any, base: Path, origin: str) -> KeySpec:
    if not isinstance(entry, dict) or not {"suite", "key", "cert"} <= set(entry):
        raise UserError(f"each entry of keys must be a table {{suite, key, cert}} ({origin}): "
                        "e.g. keys = [{suite = 0, key = \"s0.key\", cert = \"s0.der\"}]")
    suite = entry["suite"]
    if not isinstance(suite, int) or isinstance(suite, bool):
        raise UserError(f"keys: suite must be an integer, not {suite!r} ({origin})")
    return KeySpec(suite, base / str(entry["key"]), base / str(entry["cert"]))


def from_sources(flags: argparse.Namespace) -> ServerConfig:
    """ServerConfig from the parsed flags and the [server] table of --config (flags win).
    Relative paths in the file are taken from the file's directory."""
    config_path = getattr(flags, "config", None)
    section = load_section(config_path, SECTION)
    origin_file = f"config file {config_path} [{SECTION}]" if config_path else ""
    base = Path(config_path).resolve().parent if config_path else Path(".")
    known = set(_SCALARS) | {"ca_cert", "keys", "key_dir", "rate_per_source", "rate_per_id",
                             "rate_per_id_all"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r} in {origin_file}: "
                        f"known settings are {', '.join(sorted(known))}")

    def get(name: str) -> tuple[Any, str, bool]:
        value = getattr(flags, name, None)
        if value is not None:
            return value, "--" + name.replace("_", "-"), False
        if name in section:
            return section[name], origin_file, True
        return None, "default", False

    values: dict[str, Any] = {}
    given: set[str] = set()
    for name, (kind, default) in _SCALARS.items():
        value, origin, in_file = get(name)
        values[name] = default if value is None else _typed(name, value, kind, origin)
        if value is not None:
            given.add(name)
            if in_file and name in lorawan_settings.PATHS and value:
                values[name] = str(base / str(value))
    for name, default in (("rate_per_source", Rate(20, 40)), ("rate_per_id", Rate(2, 5)),
                          ("rate_per_id_all", Rate(20, 40))):
        value, origin, _ = get(name)
        values[name] = default if value is None else parse_rate(name, value, origin)
    if values["reply"] not in REPLIES:
        raise UserError(f"setting reply = {values['reply']!r}: use one of {', '.join(REPLIES)}")
    if values["log_level"] not in LOG_LEVELS:
        raise UserError(f"setting log_level = {values['log_level']!r}: "
                        f"use one of {', '.join(LOG_LEVELS)}")
    if not values["cs_url"].startswith(("http://", "https://")):
        raise UserError(f"setting cs_url = {values['cs_url']!r} is not an http(s) URL: "
                        "e.g. http://127.0.0.1:8470")
    if values["store"] and values["store"].split("://", 1)[0].lower() not in STORE_SCHEMES:
        raise UserError(f"setting store = {values['store']!r}: use postgresql://USER@HOST:PORT/"
                        "DB, ldap://HOST:PORT/BASE-DN or sqlite:///PATH (or leave it out to "
                        "ask the CS at cs_url)")
    if values["redis"] and not values["redis"].startswith(("redis://", "rediss://",
                                                            "unix://")):
        raise UserError(f"setting redis = {values['redis']!r} is not a Redis URL: e.g. "
                        "redis://127.0.0.1:6379/0")

    ca, origin, in_file = get("ca_cert")
    if ca is None:
        raise UserError("no CA certificate: give --ca-cert FILE (the ca.crt or ca.der of "
                        "`airshake ca init`) or ca_cert in the [server] table")
    ca_path = (base / str(ca)) if in_file else Path(str(ca))

    keys: list[KeySpec] = []
    flag_keys = getattr(flags, "key", None)
    if flag_keys:
        keys = [_parse_key_flag(k) for k in flag_keys]
    elif "keys" in section:
        table = section["keys"]
        if not isinstance(table, list):
            raise UserError(f"keys must be an array of tables ({origin_file})")
        keys = [_parse_key_table(e, base, origin_file) for e in table]
    key_dir, _origin, in_file = get("key_dir")
    key_dir_path = None
    if key_dir is not None:
        key_dir_path = (base / str(key_dir)) if in_file else Path(str(key_dir))
    if not keys and key_dir_path is None:
        raise UserError("no server keys: give --key-dir DIR (the --out directory of "
                        "`airshake ca issue-server`) or --key SUITE:KEYFILE:CERTFILE")
    db, origin, in_file = get("db")
    db_path: Path | str
    if db is not None and "://" in str(db):
        if not str(db).lower().startswith(("postgresql://", "postgres://")):
            raise UserError(f"setting db = {db!r}: give a SQLite file path or a "
                            "postgresql://USER@HOST:PORT/DB URL")
        db_path = str(db)
    else:
        db_path = (base / str(db)) if in_file else Path(str(db if db is not None
                                                            else "airshake-b.db"))
    values.pop("db")
    from host_server.cert_store.tokens import B_TOKEN_ENV
    token_file, _origin, in_file = get("cs_token_file")
    if token_file and in_file and os.environ.get(B_TOKEN_ENV):
        token_file = values["cs_token_file"] = ""    # flag > environment > config file
    if token_file:
        values["cs_token_file"] = str(base / str(token_file)) if in_file else str(token_file)
    cs_token = _cs_token(values["cs_token_file"], values["store"])
    lorawan_config = lorawan_settings.check(values, given)
    return ServerConfig(ca_cert=ca_path, keys=keys, key_dir=key_dir_path, db=db_path,
                        cs_token=cs_token, lorawan_config=lorawan_config, **values)


def _cs_token(token_file: str, store: str) -> str:
    """B's credential at the CS (its reader token): --cs-token-file, else
    $AIRSHAKE_CS_TOKEN, else cs_token_file of the config file (host_server.config's
    precedence). Needed unless B reads the store directly (store =)."""
    from host_server.cert_store.tokens import B_TOKEN_ENV, check, read_file
    if token_file:
        return read_file(Path(token_file), "CS token file")
    if os.environ.get(B_TOKEN_ENV):
        return check(os.environ[B_TOKEN_ENV], "$" + B_TOKEN_ENV)
    if store:
        return ""
    raise UserError("no certificate store token: pass --cs-token-file FILE (the CS's "
                    f"reader.token, in its state directory) or set ${B_TOKEN_ENV}")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `airshake server`; every default is None so the file can supply it."""
    a = parser.add_argument
    a("--config", metavar="FILE", help="TOML file; its [server] table gives any setting below "
      "(same names with underscores); flags override it")
    a("--host", help="UDP address to listen on (default 127.0.0.1)")
    a("--port", type=int, help="UDP port (default 8471; 0 = any free port)")
    a("--cs-url", help="base URL of the certificate store (default http://127.0.0.1:8470)")
    a("--cs-token-file", metavar="FILE", help="B's token at the certificate store: the "
      "reader.token file in the CS's state directory (or set $AIRSHAKE_CS_TOKEN); required "
      "unless --store")
    a("--ca-cert", metavar="FILE", help="the CA certificate (PEM or DER) that device "
      "certificates must chain to (required)")
    a("--key", action="append", metavar="SUITE:KEY:CERT",
      help="B's private key (PKCS#8 PEM) and certificate C_B (PEM or DER) for one suite; "
      "repeat per suite")
    a("--key-dir", metavar="DIR", help="directory with server-suite{N}.key and .der/.crt "
      "files (from `airshake ca issue-server`): every suite present is served")
    a("--db", metavar="PATH|URL", help="where the devices' records go: a SQLite file "
      "(default airshake-b.db) or postgresql://USER@HOST:PORT/DB (password in $PGPASSWORD)")
    a("--store", metavar="URL", help="read device certificates straight from the store "
      "instead of the CS's HTTP API: postgresql://... (revocations pushed by LISTEN/NOTIFY), "
      "ldap://HOST:PORT/BASE-DN (read-only X.509 directory; bind DN and password from "
      "$AIRSHAKE_LDAP_BIND_DN / $AIRSHAKE_LDAP_PASSWORD) or sqlite:///PATH")
    a("--redis", metavar="URL", help="Redis shared by the B instances (replay cache, rate "
      "limits, negative cache), e.g. redis://127.0.0.1:6379/0; default: none (per process)")
    a("--redis-timeout", type=float, help="seconds a Redis call may take before B treats "
      "Redis as down (default 0.25)")
    a("--workers", type=int, help="run N B processes on the same UDP port (SO_REUSEPORT); "
      "worker i serves metrics and /health on metrics_port + i (default 1)")
    a("--window", type=int, help="accepted m1 timestamp skew in seconds (default 120)")
    a("--id-len", type=int, help="length of device IDs in bytes (default 8)")
    a("--cache-size", type=int, help="certificates kept in memory (default 10000)")
    a("--cache-ttl", type=float, help="seconds before a cached certificate is re-fetched "
      "(it is still served from cache while the CS is down; default 3600)")
    a("--negative-ttl", type=float, help="seconds an unknown ID is remembered (default 60)")
    a("--rate-per-source", metavar="RATE:BURST", help="m1s per second from one IP address "
      "reaching the lookup (default 20:40)")
    a("--rate-per-id", metavar="RATE:BURST", help="m1s per second for one device ID from "
      "one IP address reaching the lookup (default 2:5)")
    a("--rate-per-id-all", metavar="RATE:BURST", help="m1s per second for one device ID from "
      "all addresses except those where it completed a handshake (default 20:40)")
    a("--cs-timeout", type=float, help="seconds to wait for the CS (default 2)")
    a("--try-later-s", type=int, help="seconds a device is told to wait when the CS is "
      "unreachable (default 30)")
    a("--metrics-host", help="address of the Prometheus endpoint (default 127.0.0.1)")
    a("--metrics-port", type=int, help="TCP port of the Prometheus endpoint (default 9471; "
      "0 = off)")
    a("--reply", choices=REPLIES, help="'ack': answer each stored record with an encrypted "
      "'ack:<seq>' record, which the device waits for (default ack); 'none': no "
      "reply (the firmware then drops its session every max_missed wakes)")
    a("--instance", help="name of this B in logs and metrics (default hostname:port)")
    a("--mtu", type=int, help="largest datagram sent; longer messages are fragmented "
      "(default 1200)")
    a("--fragment-resend", type=int, help="fragments sent at a time: of a long message, "
      "the first N, then N missing ones per fragment ack from the device (default 0: all "
      "at once; 1 on LoRaWAN class A, where one downlink leaves per uplink and the "
      "network queues the rest)")
    a("--max-handshakes", type=int, help="pending handshakes kept (default 50000)")
    a("--max-sessions", type=int, help="sessions kept, least recently used dropped first "
      "(default 100000)")
    a("--replay-size", type=int, help="m1 hashes remembered against replay (default 100000)")
    a("--revocation-poll", type=float, help="seconds between catch-up polls of the CS "
      "revocation list, besides its event stream (default 30)")
    a("--log-level", choices=LOG_LEVELS, help="log level (default info: one line per "
      "handshake)")
    a("--accept-early", action="store_true", default=None, help="accept 0-RTT data in m1 "
      "(default off: whoever holds B's static key could inject 0-RTT data as any device; "
      "see docs/SERVER_B.md)")
    a("--rcvbuf", type=int, metavar="BYTES", help="UDP receive buffer asked of the kernel "
      "(default 4194304; Linux caps it at net.core.rmem_max, B logs what it got)")
    a("--amplification", type=float, help="at most this many bytes sent per byte received "
      "to an address that has completed no handshake (default 10)")
    a("--duplicate-answers", type=int, help="times B answers copies of one m1 (default 3)")
    a("--ids-sync", type=float, help="seconds between full reads of the CS's set of "
      "enrolled IDs (default 60; events keep it current in between)")
    lorawan_flags(a)
    a("--session-max-age", type=int, help="seconds B keeps a session after its handshake; "
      "the device must then handshake again (default 604800, the core's max_age)")


def lorawan_flags(a: Any) -> None:
    """The flags of a LoRaWAN network server's MQTT integration (host_server.lorawan)."""
    a("--lorawan", choices=("chirpstack", "tts"), help="also take device traffic from a "
      "LoRaWAN network server's MQTT integration: ChirpStack v4 or The Things Stack v3 "
      "(docs/LORAWAN.md); B keeps its UDP port. Sets --mtu 51 and --fragment-resend 1 "
      "unless given")
    a("--mqtt", metavar="URL", help="the broker: mqtt://HOST:1883 or mqtts://HOST:8883")
    a("--application", metavar="ID", help="the application ID (ChirpStack: its UUID; The "
      "Things Stack: the application ID)")
    a("--tenant", help="The Things Stack's tenant (topics v3/APP@TENANT/...; 'ttn' on The "
      "Things Network; leave out on The Things Stack Open Source)")
    a("--mqtt-user", metavar="NAME", help="MQTT user name (The Things Stack: APP@TENANT)")
    a("--mqtt-password-file", metavar="FILE", help="file holding the MQTT password (The "
      "Things Stack: an API key); else $AIRSHAKE_MQTT_PASSWORD")
    a("--mqtt-ca", metavar="FILE", help="PEM CA certificate of an mqtts:// broker (default: "
      "the system's CAs)")
    a("--mqtt-cert", metavar="FILE", help="PEM client certificate for the broker (ChirpStack: "
      "the application's MQTT integration certificate); with --mqtt-key")
    a("--mqtt-key", metavar="FILE", help="its PEM private key")
    a("--fport", type=int, help="the LoRaWAN FPort airshake travels on (default 10, the "
      "boards' LORAWAN port); uplinks on other ports only open receive windows")
    a("--marshaler", choices=("json", "protobuf"), help="ChirpStack's integration marshaler "
      "(default json)")
