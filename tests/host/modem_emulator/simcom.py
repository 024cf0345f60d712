"""tests/host/modem_emulator/simcom.py: what both SIMCom stacks share: echo, SIM,
attach, the UDP relay."""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plumbing import Emulator

SEND_MAX = 1460               # SIMCom per-send limit


def _quoted(args: str) -> list[str]:
    return [a.strip().strip('"') for a in args.split(",")]


class SimCom:
    """What both SIMCom stacks share: echo, SIM, attach, the UDP relay."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.attach_asked = 0
        self.bearer = False
        self.connected = False
        self.current = b""
        self.queue: deque[bytes] = deque()

    def common(self, name: str, arg: str) -> bool:
        emu = self.emu
        if name == "AT":
            emu.reply("OK")
        elif name == "ATE0":
            emu.echo = False
            emu.reply("OK")
        elif name == "ATE1":
            emu.echo = True
            emu.reply("OK")
        elif name == "AT+CMEE":
            emu.reply("OK")
        elif name == "AT+CPIN?":
            if emu.faults.sim_ready:
                emu.reply("+CPIN: READY", "OK")
            else:
                emu.reply("+CME ERROR: SIM not inserted")
        elif name == "AT+CGATT?":
            self.attach_asked += 1
            attached = emu.faults.sim_ready and self.attach_asked > emu.timing.attach_polls
            emu.reply("+CGATT: %d" % attached, "OK")
        else:
            return False
        return True

    def open(self, host: str, port: str) -> bool:
        if not port.isdigit():
            return False
        self.emu.open_socket((host, int(port)))
        self.connected = True
        return True

    def send(self, n: str, done: str) -> None:
        emu = self.emu
        if not self.connected or not n.isdigit() or not 1 <= int(n) <= SEND_MAX:
            return emu.reply("ERROR")

        def sent(data: bytes) -> None:
            emu.relay(data)
            emu.reply(done)
        emu.expect_raw(int(n), sent)

    def datagram(self, data: bytes) -> None:
        if not self.connected:
            return
        was_empty = not self.current and not self.queue
        self.queue.append(data)
        self.emu.downlinks.append(data)
        if was_empty:
            self.emu.reply(self.urc)

    def take(self, n: int) -> tuple[bytes, int]:
        """Up to n bytes of the current datagram (never across two), and what is left of it."""
        if not self.current and self.queue:
            self.current = self.queue.popleft()
        data, self.current = self.current[:n], self.current[n:]
        return data, len(self.current)

    urc = ""
