# device.config: owns the settings file airshake-data/config.json: its defaults and how it
# is read. Only the public key and these settings ever leave the device (the host tools
# write and read this file through mpremote). Unknown keys are kept and ignored.
#   server          {"host", "port"}: B (udp, cellular) or the link emulator (unix)
#   server_name     the pin of B: the CN of B's certificate (PROTOCOL.md §2.3); set by
#                   `airshake device provision --server-name`; without it no handshake
#   suite           0 (X25519) or 2 (P-256): must match the key in key.bin
#   id_len          bytes of ID_A (B is configured alike)
#   interval_s      deep sleep between wake-ups
#   max_records     records per session before a new handshake
#   max_age_s       session age before a new handshake
#   early_data      send the reading as 0-RTT data in m1 when C_B is cached
#   rto_s, retries  retransmission timer of m1/m3 (doubling) and its retry budget
#   reply_timeout_s how long to wait for B's reply to a record
#   radio           "udp" | "lora" | "lorawan" | "cellular"; default board.RADIO
#   console         "locked" (provisioned: no REPL, device.lock) or "repl"; absent: repl
#   outbox_max      unacknowledged readings kept in flash (device.outbox; oldest dropped)
#   outbox_per_wake queued readings one wake sends at most
# Optional, beyond the contract: "mtu" (udp frame size, to emulate a LoRa link),
# "max_missed" (unanswered uplinks before the session is dropped, default 2),
# "deep_sleep" (override board.DEEP_SLEEP), "radio_log" (log the radio driver's
# progress), and the drivers' own: "lora" (overrides board.LORA), "lorawan" (OTAA keys).
from device import files

DEFAULTS = {
    "server": {"host": "127.0.0.1", "port": 8471},
    "suite": 0,
    "id_len": 8,
    "interval_s": 60,
    "max_records": 100,
    "max_age_s": 86400,
    "early_data": False,
    "rto_s": 3.0,
    "retries": 4,
    "reply_timeout_s": 5.0,
    "radio": None,
    "max_missed": 2,
}


def load():
    """The settings: config.json over the defaults. A missing or corrupt file gives the
    defaults (the device still wakes, fails to reach B, and sleeps)."""
    cfg = dict(DEFAULTS)
    data = files.read_json(files.CONFIG)
    if data is None:
        cfg["_defaults"] = True     # device.app logs it
    else:
        cfg.update(data)
    return cfg
