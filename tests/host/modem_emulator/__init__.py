"""tests/host/modem_emulator/: a package, an AT-command modem on a pseudo-terminal, for testing the
device's AT drivers (firmware/lib/radios/lorawan_at.py, cellular_at.py) on the MicroPython
unix binary without hardware. It opens a pty pair itself, answers in one of four AT
dialects and moves the device's data to and from a UDP upstream (server B, or a test's
echo socket):

  rak3172   RAKwireless RUI3 AT command set (RUI3 AT Command Manual: AT+NJM, AT+BAND,
            AT+DEVEUI/APPEUI/APPKEY, AT+JOIN=1:0:8:1 -> +EVT:JOINED, AT+NJS=?,
            AT+SEND=<port>:<hex> -> OK ... +EVT:RX_1:<rssi>:<snr>:UNICAST:<port>:<hex>,
            +EVT:TX_DONE; AT_PARAM_ERROR, AT_BUSY_ERROR, AT_NO_NETWORK_JOINED). rui3=3:
            the older events, +EVT:RX_1, RSSI -60, SNR 8 / +EVT:UNICAST / +EVT:<port>:<hex>,
            and no +EVT:TX_DONE)
  lora-e5   Seeed LoRa-E5 AT firmware (LoRa-E5 AT Command Specification: AT+MODE=LWOTAA,
            AT+DR=EU868|<dr>, AT+ID=DevEui,"..", AT+KEY=APPKEY,"..", AT+PORT, AT+JOIN ->
            +JOIN: Start .. Network joined .. Done, AT+MSGHEX="<hex>" -> +MSGHEX: Start,
            [FPENDING], [PORT: 10; RX: "<hex>"], RXWIN1, RSSI .., Done; Length error <n>)
  sim7000   SIMCom SIM7000 classic TCP/IP stack (AT+CIPSHUT, AT+CIPRXGET=1, AT+CSTT,
            AT+CIICR, AT+CIFSR, AT+CIPSTART="UDP", AT+CIPSEND=<n> + "> " + raw bytes ->
            SEND OK, +CIPRXGET: 1, AT+CIPRXGET=3,<n> -> hex, at most 730 bytes a read)
  sim7080   SIMCom SIM7080 application stack (AT+CNCFG, AT+CNACT=0,1, AT+CAOPEN=0,0,"UDP",
            AT+CASEND=0,<n> + "> " + raw bytes, +CAURC: "recv",0, AT+CARECV=0,<n> ->
            +CARECV: <len>,<raw bytes>)

LoRaWAN (network server and gateway folded in): an uplink on the application port is
relayed to the upstream; B's datagrams queue as downlinks, and one is delivered only in a
receive window after an uplink (RX1, else RX2), as in class A. The regional payload limit
of the DR holds both ways: an oversize AT+SEND/AT+MSGHEX gets the module's error, and a
datagram of B too long for the DR is dropped (a network server would refuse to schedule
it). Uplinks on other ports, or empty ones, only open the windows (polls). With
network=NetworkStandin (host_server.lorawan.standin) the network server is that object
instead: every uplink goes to it and each window asks it for the downlink (FCnt, duty
cycle, loss and the MQTT side are its business).
Cellular: a plain UDP relay, one datagram per read.

Timing (Timing) and faults (Faults: error replies, muted commands, failing joins, a key
the network does not know, no SIM, a slow attach) are hooks for the tests.

Not modelled: radio loss, duty-cycle limits, ADR and MAC commands, confirmed uplinks,
FCnt, class B/C, multiple sockets, TCP, SMS, power saving, baud rates.

One module per dialect (rak3172, lora_e5, sim7000, sim7080; lorawan and simcom hold
what two of them share), the pty and AT plumbing in plumbing.

Run standalone (from the root):
  PYTHONPATH=tests/host python -m modem_emulator --dialect rak3172 --upstream 127.0.0.1:PORT
It prints the pty path, then serves until interrupted.
"""
from __future__ import annotations

from .lora_e5 import LoraE5
from .plumbing import Emulator, Faults, Timing
from .rak3172 import Rak3172
from .sim7000 import Sim7000
from .sim7080 import Sim7080

__all__ = ["DIALECTS", "Faults", "ModemEmulator", "Timing"]

KINDS = {"rak3172": Rak3172, "lora-e5": LoraE5, "sim7000": Sim7000, "sim7080": Sim7080}
DIALECTS = tuple(KINDS)


class ModemEmulator(Emulator):
    """An emulated modem of one dialect (a name of DIALECTS) on its own pty."""

    def __init__(self, dialect: str, upstream: tuple[str, int] | None = None,
                 **options) -> None:
        if dialect not in KINDS:
            raise ValueError("dialect %r not in %s" % (dialect, DIALECTS))
        super().__init__(dialect, KINDS[dialect], upstream, **options)
