"""tests/host/modem_emulator/sim7000.py: the SIMCom SIM7000 classic TCP/IP AT dialect."""
from __future__ import annotations

from .simcom import SimCom, _quoted

HEX_READ_MAX = 730            # SIM7000 AT+CIPRXGET=3: bytes a read in hex mode


class Sim7000(SimCom):
    urc = "+CIPRXGET: 1"

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        if self.common(name, arg):
            return
        if name == "AT+CIPSHUT":
            self.bearer = self.connected = False
            return emu.reply("SHUT OK")
        if name in ("AT+CIPMUX", "AT+CIPRXGET") and arg in ("0", "1") and not self.connected:
            return emu.reply("OK")
        if name == "AT+CSTT":
            return emu.reply("OK" if _quoted(arg)[0] else "ERROR")
        if name == "AT+CIICR":
            def up() -> None:
                self.bearer = True
                emu.reply("OK")
            return emu.later(emu.timing.bearer, up)
        if name == "AT+CIFSR":
            return emu.reply("10.64.12.7" if self.bearer else "ERROR")
        if name == "AT+CIPSTART":
            args = _quoted(arg)
            if not self.bearer or len(args) != 3 or args[0] != "UDP":
                return emu.reply("ERROR")
            if self.connected:
                return emu.reply("ALREADY CONNECT")
            if not self.open(args[1], args[2]):
                return emu.reply("ERROR")
            emu.reply("OK")
            return emu.later(emu.timing.connect, lambda: emu.reply("CONNECT OK"))
        if name == "AT+CIPSEND":
            return self.send(arg, "SEND OK")
        if name == "AT+CIPRXGET" and arg.startswith("3,"):
            n = arg[2:]
            if not self.connected or not n.isdigit() or not 1 <= int(n) <= HEX_READ_MAX:
                return emu.reply("ERROR")
            data, left = self.take(int(n))
            if not data:
                return emu.reply("+CIPRXGET: 3,0,0", "OK")
            return emu.reply("+CIPRXGET: 3,%d,%d" % (len(data), left), data.hex().upper(), "OK")
        if name == "AT+CIPCLOSE":
            if not self.connected:
                return emu.reply("ERROR")
            self.connected = False
            return emu.reply("CLOSE OK")
        return emu.reply("ERROR")
