"""tests/host/modem_emulator/sim7080.py: the SIMCom SIM7080 application-stack AT dialect."""
from __future__ import annotations

from .simcom import SEND_MAX, SimCom, _quoted


class Sim7080(SimCom):
    urc = '+CAURC: "recv",0'

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        if self.common(name, arg):
            return
        if name == "AT+CNCFG":
            args = _quoted(arg)
            return emu.reply("OK" if len(args) >= 3 and args[0] == "0" else "ERROR")
        if name == "AT+CNACT?":
            return emu.reply('+CNACT: 0,%d,"%s"' % (self.bearer, "10.64.12.8" if self.bearer
                                                    else "0.0.0.0"),
                             '+CNACT: 1,0,"0.0.0.0"', "OK")
        if name == "AT+CNACT":
            if arg == "0,1":
                if self.bearer:
                    return emu.reply("ERROR")
                emu.reply("OK")

                def up() -> None:
                    self.bearer = True
                    emu.reply("+APP PDP: 0,ACTIVE")
                return emu.later(emu.timing.bearer, up)
            if arg == "0,0":
                self.bearer = self.connected = False
                return emu.reply("OK", "+APP PDP: 0,DEACTIVE")
            return emu.reply("ERROR")
        if name == "AT+CACLOSE":
            if arg != "0" or not self.connected:
                return emu.reply("ERROR")
            self.connected = False
            return emu.reply("OK")
        if name == "AT+CAOPEN":
            args = _quoted(arg)
            if not self.bearer or len(args) != 5 or args[:3] != ["0", "0", "UDP"]:
                return emu.reply("ERROR")
            if self.connected:
                return emu.reply("+CAOPEN: 0,4", "OK")
            if not self.open(args[3], args[4]):
                return emu.reply("ERROR")
            return emu.reply("+CAOPEN: 0,0", "OK")
        if name == "AT+CASEND":
            cid, _, n = arg.partition(",")
            return self.send(n if cid == "0" else "", "OK")
        if name == "AT+CARECV":
            cid, _, n = arg.partition(",")
            if cid != "0" or not self.connected or not n.isdigit() or not 1 <= int(n) <= SEND_MAX:
                return emu.reply("ERROR")
            data, _ = self.take(int(n))
            if not data:
                return emu.reply("+CARECV: 0", "OK")
            emu.reply_raw(b"\r\n+CARECV: %d," % len(data) + data)
            return emu.reply("OK")
        return emu.reply("ERROR")
