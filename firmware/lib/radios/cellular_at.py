# radios/cellular_at.py: owns CellularRadio, UDP to server B through a SIMCom modem's
# own IP stack over AT commands, settings board.CELLULAR, destination config["server"].
# open(): power up (PWRKEY pulse if the modem is silent), echo off, SIM ready, wait for
# packet-domain attach, bring up the data bearer, open one UDP socket:
#   sim7000  classic stack: AT+CIPSHUT, AT+CIPMUX=0, AT+CIPRXGET=1, AT+CSTT="apn",
#            AT+CIICR, AT+CIFSR, AT+CIPSTART="UDP","host","port" -> CONNECT OK.
#            send: AT+CIPSEND=<len>, "> ", the raw bytes -> SEND OK.
#            recv: URC +CIPRXGET: 1, then AT+CIPRXGET=3,<n> reads the data in HEX
#            (+CIPRXGET: 3,<n>,<left>, then a hex line): binary-safe in a line protocol,
#            and n <= 730 in hex mode, so a datagram is read until <left> is 0.
#   sim7080  application stack (the only one it has): AT+CNCFG=0,1,"apn", AT+CNACT=0,1,
#            AT+CAOPEN=0,0,"UDP","host",port -> +CAOPEN: 0,0.
#            send: AT+CASEND=0,<len>, "> ", the raw bytes -> OK.
#            recv: URC +CAURC: "recv",0 (or +CADATAIND: 0), then AT+CARECV=0,<n>, whose
#            answer is +CARECV: <len>,<len raw bytes>: no hex mode, so it is read by length.
# Raw bytes are sent only after the prompt of a length-fixed send, which needs no
# escaping. mtu is 1200 (well under both modules' per-send limit of 1460).
import time
from binascii import unhexlify

import asyncio
from radios.base import RadioError
from radios.at import AtChannel, AtRadio, open_transport

_HEX_CHUNK = 730                 # AT+CIPRXGET=3: max bytes per read in hex mode
# unsolicited lines: data waiting, and the connection or the bearer gone
_DATA = {"sim7000": ("+CIPRXGET: 1",), "sim7080": ('+CAURC: "recv"', "+CADATAIND")}
_LOST = {"sim7000": ("CLOSED", "UDP CLOSED", "+PDP: DEACT"),
         "sim7080": ('+CAURC: "pdpdeact"', "+APP PDP: 0,DEACTIVE", "+CASTATE: 0,0")}


def _settings(board, name):
    s = getattr(board, name, None)
    if s is None and isinstance(board, dict):
        s = board.get(name)
    if not s:
        raise RadioError("board has no %s settings" % name)
    return s


def _is_ip(line):
    parts = line.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def _printer(line):
    print("airshake:", line)


class CellularRadio(AtRadio):
    KIND = "cellular"
    mtu = 1200

    def __init__(self, board, config, log=None):
        s = self.settings = dict(_settings(board, "CELLULAR"))
        self.module = s.get("module", "sim7000")
        if self.module not in _DATA:
            raise RadioError("cellular: module %s not supported (sim7000, sim7080)"
                             % self.module)
        server = config.get("server") or {}
        self.host = server.get("host")
        self.port = int(server.get("port") or 0)
        if not self.host or not self.port:
            raise RadioError("cellular: config.json server needs host and port")
        self.apn = s.get("apn", "")
        self.log = log if log is not None else (_printer if s.get("debug") else None)
        self.cmd_timeout = s.get("cmd_timeout", 5.0)
        self.attach_timeout = s.get("attach_timeout", 120.0)
        self.attach_poll = s.get("attach_poll", 2.0)
        self.bearer_timeout = s.get("bearer_timeout", 85.0)   # AT+CIICR: up to 85 s
        self.connect_timeout = s.get("connect_timeout", 75.0)  # AT+CIPSTART, AT+CAOPEN
        self.send_timeout = s.get("send_timeout", 20.0)
        self._rx = []
        self._ch = None
        self._up = False

    # -- open -----------------------------------------------------------------------------
    async def open(self):
        if self._ch is not None:
            return
        self._ch = AtChannel(open_transport(self.settings), self.module,
                             _DATA[self.module] + _LOST[self.module], self.log)
        try:
            await self._power_up()
            c = self._at().command
            await c("ATE0", timeout=self.cmd_timeout)
            await c("AT+CMEE=2", timeout=self.cmd_timeout)
            pin = await self._query("AT+CPIN?", "+CPIN:")
            if pin != "+CPIN: READY":
                raise RadioError("%s: SIM not ready (%s)" % (self.module, pin))
            await self._attach()
            if self.module == "sim7000":
                await self._sim7000_socket()
            else:
                await self._sim7080_socket()
            self._up = True
            self._note("udp socket to %s:%d open" % (self.host, self.port))
        except Exception:
            await self.close()
            raise

    async def _power_up(self):
        if await self._at().sync("AT", ("OK",), tries=3, timeout=1.0):
            return
        pin = self.settings.get("pwrkey")
        if pin is None or self.settings.get("uart_path"):
            raise RadioError("%s: no answer to AT" % self.module)
        try:
            from machine import Pin
        except ImportError:
            raise RadioError("%s: no answer to AT" % self.module)
        # PWRKEY pulse; the LilyGO boards drive it through a transistor (active high)
        level = self.settings.get("pwrkey_level", 1)
        p = Pin(pin, Pin.OUT, value=1 - level)
        await asyncio.sleep_ms(100)
        p.value(level)
        await asyncio.sleep_ms(self.settings.get("pwrkey_ms", 1200))
        p.value(1 - level)
        self._note("pwrkey pulsed, waiting for the modem")
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < 15000:
            if await self._at().sync("AT", ("OK",), tries=1, timeout=1.0):
                return
        raise RadioError("%s: no answer to AT after the PWRKEY pulse" % self.module)

    async def _query(self, cmd, prefix):
        """The information line of a read command (the one starting with prefix)."""
        lines, _ = await self._at().command(cmd, timeout=self.cmd_timeout)
        for line in lines:
            if line.startswith(prefix):
                return line
        raise RadioError("%s: %s answered no %s line" % (self.module, cmd, prefix))

    async def _attach(self):
        t0 = time.ticks_ms()
        while True:
            if (await self._query("AT+CGATT?", "+CGATT:")).replace(" ", "") == "+CGATT:1":
                return
            if time.ticks_diff(time.ticks_ms(), t0) > self.attach_timeout * 1000:
                raise RadioError("%s: not attached to the packet domain after %.0f s"
                                 % (self.module, self.attach_timeout))
            await asyncio.sleep(self.attach_poll)

    async def _sim7000_socket(self):
        c = self._at().command
        t = self.cmd_timeout
        await c("AT+CIPSHUT", ("SHUT OK",), timeout=65)
        await c("AT+CIPMUX=0", timeout=t)
        await c("AT+CIPRXGET=1", timeout=t)
        await c('AT+CSTT="%s"' % self.apn, timeout=t)
        await c("AT+CIICR", timeout=self.bearer_timeout)
        lines, ip = await c("AT+CIFSR", (_is_ip,), timeout=t)
        self._note("bearer up, ip %s" % ip)
        await c('AT+CIPSTART="UDP","%s","%d"' % (self.host, self.port),
                ("CONNECT OK", "ALREADY CONNECT"),
                ("CONNECT FAIL", "ERROR", "+CME ERROR"), timeout=self.connect_timeout)

    async def _sim7080_socket(self):
        c = self._at().command
        t = self.cmd_timeout
        await c('AT+CNCFG=0,1,"%s"' % self.apn, timeout=t)
        lines, _ = await c("AT+CNACT?", timeout=t)
        if not any(x.replace(" ", "").startswith("+CNACT:0,1") for x in lines):
            await c("AT+CNACT=0,1", timeout=t)
            t0 = time.ticks_ms()
            while True:
                lines, _ = await c("AT+CNACT?", timeout=t)
                if any(x.replace(" ", "").startswith("+CNACT:0,1") for x in lines):
                    break
                if time.ticks_diff(time.ticks_ms(), t0) > self.bearer_timeout * 1000:
                    raise RadioError("sim7080: PDP context 0 not active after %.0f s"
                                     % self.bearer_timeout)
                await asyncio.sleep(self.attach_poll)
        try:
            await c("AT+CACLOSE=0", timeout=t)      # a socket left over from before
        except RadioError:
            pass
        lines, _ = await c('AT+CAOPEN=0,0,"UDP","%s",%d' % (self.host, self.port),
                           timeout=self.connect_timeout)
        opened = [x for x in lines if x.startswith("+CAOPEN:")]
        if not opened:
            line = await self._at().wait_urc(("+CAOPEN:",), t)
            opened = [line] if line else []
        if not opened or opened[0].replace(" ", "") != "+CAOPEN:0,0":
            raise RadioError("sim7080: AT+CAOPEN failed: %s"
                             % (opened[0] if opened else "no +CAOPEN"))

    # -- send / recv ----------------------------------------------------------------------
    async def send(self, frame):
        if not self._up:
            raise RadioError("cellular: send before open")
        if len(frame) > self.mtu:
            raise RadioError("cellular: frame of %d bytes exceeds the MTU %d"
                             % (len(frame), self.mtu))
        self._check_lost()
        if self.module == "sim7000":
            await self._at().command("AT+CIPSEND=%d" % len(frame),
                                   ("SEND OK", "DATA ACCEPT"),
                                   ("SEND FAIL", "ERROR", "+CME ERROR"),
                                   timeout=self.send_timeout, payload=frame)
        else:
            await self._at().command("AT+CASEND=0,%d" % len(frame), timeout=self.send_timeout,
                                   payload=frame)

    def _check_lost(self):
        lost = self._at().take_urcs(_LOST[self.module])
        if lost:
            self._up = False
            raise RadioError("%s: connection lost (%s)" % (self.module, lost[0]))

    async def recv(self, timeout):
        if not self._up:
            raise RadioError("cellular: recv before open")
        deadline = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while not self._rx:
            self._check_lost()
            if self._at().take_urcs(_DATA[self.module]):
                await self._read_all()
                continue
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return None
            line = await self._at().wait_urc(_DATA[self.module] + _LOST[self.module],
                                           left / 1000)
            if line is None:
                return None
            self._at().urcs.insert(0, line)
        return self._rx.pop(0)

    async def _read_all(self):
        """Every datagram the modem holds, into self._rx."""
        c = self._at().command
        if self.module == "sim7080":
            while True:
                lines, _ = await c("AT+CARECV=0,%d" % self.mtu, timeout=self.cmd_timeout,
                                   binary="+CARECV: ")
                data = [x for x in lines if isinstance(x, bytes)]
                if not data or not data[0]:
                    return
                self._rx.append(data[0])
        part = b""
        while True:
            lines, _ = await c("AT+CIPRXGET=3,%d" % _HEX_CHUNK, timeout=self.cmd_timeout)
            head = [i for i in range(len(lines)) if lines[i].startswith("+CIPRXGET: 3,")]
            if not head:
                raise RadioError("sim7000: AT+CIPRXGET=3 answered %s" % lines)
            i = head[0]
            fields = lines[i][13:].split(",")
            n, left = int(fields[0]), int(fields[1])
            if n == 0:
                if part:
                    self._rx.append(part)
                return
            part += unhexlify(lines[i + 1])
            if left == 0:
                self._rx.append(part)
                part = b""

    async def close(self):
        ch, self._ch = self._ch, None
        up, self._up = self._up, False
        if ch is None:
            return
        if up:
            try:
                if self.module == "sim7000":
                    await ch.command("AT+CIPCLOSE", ("CLOSE OK",), timeout=5)
                    await ch.command("AT+CIPSHUT", ("SHUT OK",), timeout=10)
                else:
                    await ch.command("AT+CACLOSE=0", timeout=5)
                    await ch.command("AT+CNACT=0,0", timeout=5)
            except RadioError:
                pass
        await ch.close()
