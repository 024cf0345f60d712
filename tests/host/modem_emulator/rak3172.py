"""tests/host/modem_emulator/rak3172.py: the RAKwireless RUI3 AT dialect (rui3=3: the
older events)."""
from __future__ import annotations

from .lorawan import LoRaWANNetwork, _hex

RAK_BANDS = {4: "EU868", 5: "US915"}


class Rak3172(LoRaWANNetwork):
    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        get = arg == "?"
        if name == "AT":
            return emu.reply("OK")
        if name == "AT+NWM":
            return emu.reply("AT+NWM=1", "OK") if get else \
                emu.reply("OK" if arg == "1" else "AT_PARAM_ERROR")
        if name in ("AT+NJM", "AT+ADR", "AT+CFM"):
            return emu.reply("%s=1" % name, "OK") if get else \
                emu.reply("OK" if arg in ("0", "1") else "AT_PARAM_ERROR")
        if name == "AT+CLASS":
            return emu.reply("AT+CLASS=A", "OK") if get else \
                emu.reply("OK" if arg.upper() in ("A", "B", "C") else "AT_PARAM_ERROR")
        if name == "AT+BAND":
            if get:
                band = {v: k for k, v in RAK_BANDS.items()}[self.region]
                return emu.reply("AT+BAND=%d" % band, "OK")
            if arg.isdigit() and int(arg) in RAK_BANDS:
                self.region = RAK_BANDS[int(arg)]
                return emu.reply("OK")
            return emu.reply("AT_PARAM_ERROR")
        if name in ("AT+DEVEUI", "AT+APPEUI", "AT+APPKEY"):
            attr, digits = {"AT+DEVEUI": ("deveui", 16), "AT+APPEUI": ("appeui", 16),
                            "AT+APPKEY": ("appkey", 32)}[name]
            if get:
                return emu.reply("%s=%s" % (name, getattr(self, attr)), "OK")
            if _hex(arg, digits) is None:
                return emu.reply("AT_PARAM_ERROR")
            setattr(self, attr, arg.upper())
            return emu.reply("OK")
        if name == "AT+DR":
            if get:
                return emu.reply("AT+DR=%d" % self.dr, "OK")
            return emu.reply("OK" if arg.isdigit() and self.set_dr(int(arg)) else "AT_PARAM_ERROR")
        if name == "AT+NJS":
            return emu.reply("AT+NJS=%d" % self.joined, "OK")
        if name == "AT+JOIN":
            if self.busy:
                return emu.reply("AT_BUSY_ERROR")
            params = arg.split(":") if eq else ["1"]
            if params[0] not in ("0", "1") or (len(params) > 2 and not 7 <= int(params[2]) <= 255):
                return emu.reply("AT_PARAM_ERROR")
            if params[0] == "0":
                return emu.reply("OK")
            emu.reply("OK")
            return self.join(lambda ok: emu.reply(
                "+EVT:JOINED" if ok else "+EVT:JOIN_FAILED_RX_TIMEOUT"))
        if name == "AT+SEND":
            if not self.joined:
                return emu.reply("AT_NO_NETWORK_JOINED")
            if self.busy:
                return emu.reply("AT_BUSY_ERROR")
            port, _, data = arg.partition(":")
            payload = _hex(data)
            if (not port.isdigit() or not 1 <= int(port) <= 223 or payload is None
                    or not 1 <= len(payload) <= 250 or len(payload) > self.limit()):
                return emu.reply("AT_PARAM_ERROR")
            emu.reply("OK")

            def done(down: bytes | None, pending: bool, window: int) -> None:
                if down is not None and emu.rui3 >= 4:
                    emu.reply("+EVT:RX_%d:-60:8:UNICAST:%d:%s"
                              % (window, self.port, down.hex().upper()))
                elif down is not None:
                    emu.reply("+EVT:RX_%d, RSSI -60, SNR 8" % window, "+EVT:UNICAST",
                              "+EVT:%d:%s" % (self.port, down.hex().upper()))
                if emu.rui3 >= 4:
                    emu.reply("+EVT:TX_DONE")
            return self.uplink(int(port), payload, done)
        return emu.reply("AT_COMMAND_NOT_FOUND")
