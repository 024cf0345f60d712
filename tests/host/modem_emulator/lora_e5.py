"""tests/host/modem_emulator/lora_e5.py: the Seeed LoRa-E5 AT dialect."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plumbing import Emulator

from .lorawan import LIMITS, LoRaWANNetwork, _hex


class LoraE5(LoRaWANNetwork):
    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.mode = "LWABP"

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        tag = "+" + name[3:] if name.startswith("AT+") else "+AT"
        if name == "AT":
            return emu.reply("+AT: OK")
        if name == "AT+MODE":
            if eq and arg.upper() not in ("LWOTAA", "LWABP", "TEST"):
                return emu.reply("+MODE: ERROR(-1)")
            if eq:
                self.mode = arg.upper()
            return emu.reply("+MODE: %s" % self.mode)
        if name == "AT+DR":
            if not eq:
                return emu.reply("+DR: DR%d" % self.dr, "+DR: %s DR%d" % (self.region, self.dr))
            if arg.upper() in LIMITS:
                self.region = arg.upper()
                return emu.reply("+DR: %s" % self.region)
            value = arg.upper().removeprefix("DR")
            if value.isdigit() and self.set_dr(int(value)):
                return emu.reply("+DR: DR%d" % self.dr)
            return emu.reply("+DR: ERROR(-1)")
        if name == "AT+ID":
            kind, _, value = arg.partition(",")
            attr = {"DEVEUI": "deveui", "APPEUI": "appeui"}.get(kind.strip().upper())
            raw = _hex(value, 16)
            if attr is None or raw is None:
                return emu.reply("+ID: ERROR(-1)")
            setattr(self, attr, raw.hex().upper())
            return emu.reply("+ID: %s, %s" % (kind.strip(), ":".join(
                "%02X" % b for b in raw)))
        if name == "AT+KEY":
            kind, _, value = arg.partition(",")
            if kind.strip().upper() != "APPKEY" or _hex(value, 32) is None:
                return emu.reply("+KEY: ERROR(-1)")
            self.appkey = value.strip().strip('"').upper()
            return emu.reply("+KEY: APPKEY %s" % self.appkey)
        if name == "AT+CLASS":
            return emu.reply("+CLASS: A" if arg.upper() == "A" else "+CLASS: ERROR(-1)")
        if name == "AT+ADR":
            return emu.reply("+ADR: %s" % arg.upper() if arg.upper() in ("ON", "OFF")
                             else "+ADR: ERROR(-1)")
        if name == "AT+PORT":
            if arg.isdigit() and 1 <= int(arg) <= 223:
                self.port = int(arg)
                return emu.reply("+PORT: %d" % self.port)
            return emu.reply("+PORT: ERROR(-1)")
        if name == "AT+JOIN":
            if self.mode != "LWOTAA":
                return emu.reply("+JOIN: Not in OTAA mode")
            if self.joined:
                return emu.reply("+JOIN: Joined already")
            if self.busy:
                return emu.reply("+JOIN: LoRaWAN modem is busy")
            emu.reply("+JOIN: Start", "+JOIN: NORMAL")
            return self.join(lambda ok: emu.reply(
                *(("+JOIN: Network joined", "+JOIN: NetID 000013 DevAddr 26:0B:4A:7C",
                   "+JOIN: Done") if ok else ("+JOIN: Join failed", "+JOIN: Done"))))
        if name == "AT+MSGHEX":
            if not self.joined:
                return emu.reply("+MSGHEX: Please join network first")
            if self.busy:
                return emu.reply("+MSGHEX: LoRaWAN modem is busy")
            payload = _hex(arg) if eq else b""
            if payload is None:
                return emu.reply("+MSGHEX: ERROR(-1)")
            if len(payload) > self.limit():
                return emu.reply("+MSGHEX: Length error %d" % self.limit())
            emu.reply("+MSGHEX: Start")

            def done(down: bytes | None, pending: bool, window: int) -> None:
                lines = []
                if pending:
                    lines.append("+MSGHEX: FPENDING")
                if down is not None:
                    lines.append('+MSGHEX: PORT: %d; RX: "%s"' % (self.port, down.hex().upper()))
                    lines.append("+MSGHEX: RXWIN%d, RSSI -60, SNR 8.0" % window)
                emu.reply(*lines, "+MSGHEX: Done")
            return self.uplink(self.port, payload, done)
        return emu.reply("%s: ERROR(-10)" % tag)
