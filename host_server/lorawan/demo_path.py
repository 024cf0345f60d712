# host_server.lorawan.demo_path: the LoRaWAN path of `airshake demo --via chirpstack|tts`:
# a mosquitto broker in the demo's work directory, the network-server stand-in speaking
# that network server's MQTT format, and its UDP radio side for the devices (behind the
# link emulator, which models the air). start() returns what the demo needs to point B
# (b_flags: the `airshake server` flags) and the devices (air_port) at it; close() stops
# them. A missing mosquitto is one UserError line saying how to install it.
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from host_server.lorawan.broker import Mosquitto
from host_server.lorawan.settings import DEFAULT_FPORT
from host_server.lorawan.standin import NetworkStandin
from host_server.lorawan.udp_air import UdpAir

VIAS = ("chirpstack", "tts")
APPLICATION = {"chirpstack": "6e1c3b1a-0d5e-4f7a-9c1e-5a1d0e0d0e01",   # ChirpStack: a UUID
               "tts": "airshake-demo"}


@dataclass
class DemoPath:
    kind: str
    broker: Mosquitto
    ns: NetworkStandin
    air: UdpAir
    b_flags: list[str] = field(default_factory=list)

    @property
    def air_port(self) -> int:
        """Where the link emulator forwards the devices' frames (instead of to B)."""
        return self.air.port

    def describe(self) -> str:
        return ("%s MQTT integration: mosquitto at %s, network-server stand-in (FPort %d, "
                "one downlink per uplink, RX1/RX2), radio side on udp 127.0.0.1:%d"
                % ("ChirpStack v4" if self.kind == "chirpstack" else "The Things Stack v3",
                   self.broker.url, self.ns.fport, self.air.port))

    def close(self) -> None:
        self.air.stop()
        self.ns.stop()
        self.broker.stop()


def start(kind: str, work: Path, region: str = "EU868", dr: int = 0,
          rx1: float = 0.2, rx2: float = 0.2) -> DemoPath:
    """Broker, stand-in and its radio side, running; the caller closes them."""
    if kind not in VIAS:
        raise ValueError("kind must be one of %s" % (VIAS,))
    broker = Mosquitto(work / "mqtt").start()
    app = APPLICATION[kind]
    tenant = "demo" if kind == "tts" else ""
    try:
        # the link emulator models the air (duty cycle included): the stand-in does not
        ns = NetworkStandin(kind, ("127.0.0.1", broker.port), app, tenant,
                            fport=DEFAULT_FPORT, region=region, dr=dr,
                            duty_cycle=False).start()
        ns.wait_connected(10)
        air = UdpAir(ns, rx1=rx1, rx2=rx2).start()
    except BaseException:
        broker.stop()
        raise
    flags = ["--lorawan", kind, "--mqtt", broker.url, "--application", app]
    if tenant:
        flags += ["--tenant", tenant]
    return DemoPath(kind, broker, ns, air, flags)
