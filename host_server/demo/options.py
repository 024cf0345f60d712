# host_server.demo.options: owns the demo's settings (Options, filled from the command
# line) and the choices derived from the link profile: virtual or real time, and the
# device's retransmission timers that go with it (Timing).
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airshake_tools.linkemu import Profile, cost

DEVICE_SUITES = (0, 2)        # devices make their own keys for these (suite 1 is RSA)
AUTO_VIRTUAL_S = 10.0         # auto: virtual time when a handshake would take longer
M2_BY_VALUE = 322             # bytes of m2 with C_B by value and B's time (suite 0)


@dataclass
class Options:
    link: str = "lora-sf7"
    loss: float = 0.0
    devices: int = 1
    suite: int = 0
    seed: int = 1
    time: str = "auto"                 # auto | virtual | real
    workdir: Path | None = None        # None: a temporary directory, removed at the end
    keep: bool = False
    out: Path | None = None            # SVG and summary.json (default ./demo-out)
    cs_port: int = 0                   # 0: any free port
    b_port: int = 0
    relay_port: int = 0
    timeout: float | None = None       # seconds for the devices' wakes (None: by the link)
    micropython: str | None = None     # the unix binary (default: next to python, PATH)
    full_deploy: bool = False          # deploy device 1 through mpremote too
    via: str = "udp"                   # udp | chirpstack | tts (host_server.lorawan.demo_path)
                                       # | gateway (host_server.gateway.demo_path)


@dataclass(frozen=True)
class Timing:
    virtual: bool
    rto_s: float              # the device's first retransmission timer (real seconds)
    retries: int              # its retry budget (m1, m3, and fragment-ack rounds)
    reply_timeout_s: float    # how long it waits for B's reply to a record
    modelled_s: float         # cost() of m1 and m2 by value on the link (no loss)


def timing(profile: Profile, mode: str) -> Timing:
    """Virtual time for links where one handshake takes more than AUTO_VIRTUAL_S (LoRa:
    duty-cycle waits of tens of seconds), real time otherwise. In virtual time the
    endpoints' timers still run in real time (linkemu/relay.py), so they only have to
    outlast the real processing of B, the CS and the relay (a few hundred ms); in real time
    they must outlast the modelled round trip."""
    modelled = cost([("up", 46), ("down", M2_BY_VALUE)], profile)["wall_s"]
    virtual = mode == "virtual" or (mode == "auto" and modelled > AUTO_VIRTUAL_S)
    if virtual:
        return Timing(True, 0.6, 30, 2.0, modelled)
    round_trip = cost([("up", 46), ("down", 41)], profile)["wall_s"]
    return Timing(False, max(1.0, 1.5 * modelled + 0.5), 8,
                  max(2.0, 2 * round_trip + 1.0), modelled)
