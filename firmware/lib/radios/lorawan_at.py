# radios/lorawan_at.py: owns LorawanRadio, LoRaWAN class A through an AT-command modem:
# the RAK3172 (RUI3 AT command set) and the Seeed LoRa-E5 / Wio-E5 (Seeed LoRaWAN AT
# firmware), settings board.LORAWAN, OTAA keys config["lorawan"] {deveui, appeui or
# joineui, appkey}. open() sets region, class A, fixed DR (ADR off, so mtu holds) and
# the keys (the AppKey is a channel secret, masked in every log line), then joins by
# OTAA with retries and exponential backoff. mtu is the regional payload limit of the
# DR (EU868: 51 at DR0-2, 115 at DR3, 222 at DR4-7; US915: 11, 53, 125, 242, 242): the
# core's fragmentation layer cuts longer messages. send() is one unconfirmed uplink, in
# hex, on the configured FPort; it returns once the modem has closed the receive windows.
#
# Class A: B's frames reach the device only in the two receive windows that follow an
# uplink, one downlink per uplink. recv() hands out what those windows brought (or waits
# for one). An answer of B that did not fit stays queued at the network server until
# the next uplink: poll() sends an uplink with no application data just to open the
# windows (LoRa-E5: an empty frame; RAK3172: RUI3's AT+SEND needs a payload, so one 0x00
# byte on poll_port, which the network side must not forward to B). With the LoRa-E5 the
# modem reports FPending (more downlinks queued): recv() then polls by itself.
import time
from binascii import hexlify, unhexlify

import asyncio
from radios.base import RadioError
from radios.at import AtChannel, AtRadio, open_transport

# max application payload (N, no FOpts) by DR: LoRaWAN Regional Parameters RP002
_LIMITS = {"EU868": (51, 51, 51, 115, 222, 222, 222, 222),
           "US915": (11, 53, 125, 242, 242)}
_RAK_BAND = {"EU868": 4, "US915": 5}          # RUI3 AT+BAND numbers
_RAK_DONE = ("+EVT:TX_DONE", "+EVT:SEND_CONFIRMED", "+EVT:SEND CONFIRMED")
_RAK_JOIN = ("+EVT:JOIN",)
_E5_SEND_ERRORS = ("+MSGHEX: Please join", "+MSGHEX: Length error", "+MSGHEX: DR error",
                   "+MSGHEX: LoRaWAN modem is busy", "+MSGHEX: No free channel",
                   "+MSGHEX: No band", "+MSGHEX: ERROR")


def payload_limit(region, dr):
    """The largest uplink payload (bytes) at this region and data rate."""
    limits = _LIMITS.get(region)
    if limits is None:
        raise RadioError("lorawan: region %s not supported (%s)"
                         % (region, ", ".join(sorted(_LIMITS))))
    if not 0 <= dr < len(limits):
        raise RadioError("lorawan: %s has no DR%d" % (region, dr))
    return limits[dr]


def _settings(board, name):
    s = getattr(board, name, None)
    if s is None and isinstance(board, dict):
        s = board.get(name)
    if not s:
        raise RadioError("board has no %s settings" % name)
    return s


def _hex_id(keys, names, digits):
    for n in names:
        v = keys.get(n)
        if v:
            v = v.replace(":", "").replace("-", "").replace(" ", "").upper()
            try:
                ok = len(v) == digits and len(unhexlify(v)) == digits // 2
            except ValueError:
                ok = False
            if not ok:
                raise RadioError("lorawan: config.json lorawan.%s must be %d hex digits"
                                 % (n, digits))
            return v
    raise RadioError("lorawan: config.json lorawan.%s is missing" % names[0])


def _printer(line):
    print("airshake:", line)


class LorawanRadio(AtRadio):
    KIND = "lorawan"

    def __init__(self, board, config, log=None):
        s = self.settings = dict(_settings(board, "LORAWAN"))
        self.module = s.get("module", "rak3172")
        if self.module not in ("rak3172", "lora-e5"):
            raise RadioError("lorawan: module %s not supported (rak3172, lora-e5)"
                             % self.module)
        self.region = s.get("region", "EU868")
        self.dr = int(s.get("dr", 0))
        self.port = int(s.get("port", 10))
        if not 1 <= self.port <= 223:
            raise RadioError("lorawan: FPort %d outside 1..223" % self.port)
        self.poll_port = int(s.get("poll_port", self.port + 1 if self.port < 223 else 1))
        self.mtu = payload_limit(self.region, self.dr)
        self._keys = config.get("lorawan") or {}
        self.log = log if log is not None else (_printer if s.get("debug") else None)
        self.cmd_timeout = s.get("cmd_timeout", 2.0)
        self.join_timeout = s.get("join_timeout", 20.0)      # JN2DL 6 s + airtime
        self.join_attempts = s.get("join_attempts", 5)
        self.join_backoff = s.get("join_backoff", 10.0)      # then doubling
        self.tx_timeout = s.get("tx_timeout", 12.0)           # airtime at DR0 + RX2
        self.pending = False      # the network said more downlinks are queued (FPending)
        self.joined = False
        self.rssi = None
        self.snr = None
        self._rx = []
        self._ch = None

    # -- open -----------------------------------------------------------------------------
    async def open(self):
        if self._ch is not None:
            return
        deveui = _hex_id(self._keys, ("deveui",), 16)
        appeui = _hex_id(self._keys, ("joineui", "appeui"), 16)
        appkey = _hex_id(self._keys, ("appkey",), 32)
        urc = ("+EVT:",) if self.module == "rak3172" else ()
        self._ch = AtChannel(open_transport(self.settings), self.module, urc, self.log)
        self._at().secret(appkey)
        try:
            if self.module == "rak3172":
                await self._rak_setup(deveui, appeui, appkey)
            else:
                await self._e5_setup(deveui, appeui, appkey)
            await self._join()
        except Exception:
            await self.close()
            raise

    async def _wake(self, cmd, expect):
        if await self._at().sync(cmd, expect):
            return
        pin = self.settings.get("reset")
        if pin is not None and not self.settings.get("uart_path"):
            try:
                from machine import Pin
                p = Pin(pin, Pin.OUT, value=0)
                await asyncio.sleep_ms(20)
                p.value(1)
                await asyncio.sleep_ms(1500)
            except (ImportError, AttributeError):
                pass
            if await self._at().sync(cmd, expect):
                return
        raise RadioError("%s: no answer to %s (wiring, baud %s?)"
                         % (self.module, cmd, self.settings.get("baud")))

    async def _rak_setup(self, deveui, appeui, appkey):
        c = self._at().command
        t = self.cmd_timeout
        await self._wake("AT", ("OK",))
        lines, _ = await c("AT+NWM=?", timeout=t)
        if lines and lines[-1].split("=")[-1].strip() != "1":
            await c("AT+NWM=1", timeout=t)          # RUI3 restarts into LoRaWAN mode
            await asyncio.sleep(3)
            await self._wake("AT", ("OK",))
        await c("AT+NJM=1", timeout=t)
        await c("AT+CLASS=A", timeout=t)
        await c("AT+BAND=%d" % _RAK_BAND[self.region], timeout=t)
        await c("AT+DEVEUI=" + deveui, timeout=t)
        await c("AT+APPEUI=" + appeui, timeout=t)
        await c("AT+APPKEY=" + appkey, timeout=t)
        await c("AT+ADR=0", timeout=t)
        await c("AT+DR=%d" % self.dr, timeout=t)
        await c("AT+CFM=0", timeout=t)

    async def _e5_setup(self, deveui, appeui, appkey):
        t = self.cmd_timeout

        async def c(cmd, answer):
            await self._at().command(cmd, ("+%s:" % answer,), ("+%s: ERROR" % answer,), t)

        await self._wake("AT", ("+AT: OK",))
        await c("AT+MODE=LWOTAA", "MODE")
        await c("AT+DR=" + self.region, "DR")
        await c('AT+ID=DevEui,"%s"' % deveui, "ID")
        await c('AT+ID=AppEui,"%s"' % appeui, "ID")
        await c('AT+KEY=APPKEY,"%s"' % appkey, "KEY")
        await c("AT+CLASS=A", "CLASS")
        await c("AT+ADR=OFF", "ADR")
        await c("AT+DR=%d" % self.dr, "DR")
        await c("AT+PORT=%d" % self.port, "PORT")

    async def _join(self):
        last = "no attempt"
        for attempt in range(self.join_attempts):
            if attempt:
                wait = self.join_backoff * (1 << (attempt - 1))
                self._note("join retry %d in %.1f s (%s)" % (attempt + 1, wait, last))
                await asyncio.sleep(wait)
            try:
                if self.module == "rak3172":
                    ok, last = await self._rak_join()
                else:
                    ok, last = await self._e5_join()
            except RadioError as e:
                ok, last = False, str(e)
            if ok:
                self.joined = True
                self._note("joined %s DR%d mtu=%d" % (self.region, self.dr, self.mtu))
                return
        raise RadioError("%s: OTAA join failed after %d attempts (last: %s)"
                         % (self.module, self.join_attempts, last))

    async def _rak_join(self):
        self._at().take_urcs(_RAK_JOIN)
        # join now, no auto-join, retry interval 8 s (7..255), one attempt: we retry
        await self._at().command("AT+JOIN=1:0:8:1", timeout=self.cmd_timeout)
        ev = await self._at().wait_urc(_RAK_JOIN, self.join_timeout)
        if ev is None:
            return False, "no +EVT:JOIN* within %.0f s" % self.join_timeout
        if ev != "+EVT:JOINED":
            return False, ev
        lines, _ = await self._at().command("AT+NJS=?", timeout=self.cmd_timeout)
        if not lines or lines[-1].split("=")[-1].strip() != "1":
            return False, "AT+NJS=? says not joined"
        await self._at().command("AT+DR=%d" % self.dr, timeout=self.cmd_timeout)
        return True, ev

    async def _e5_join(self):
        lines, final = await self._at().command(
            "AT+JOIN", ("+JOIN: Done", "+JOIN: Joined already"),
            ("+JOIN: ERROR", "+JOIN: LoRaWAN modem is busy", "+JOIN: Not in OTAA mode",
             "+JOIN: No free channel", "+JOIN: No band"), self.join_timeout)
        if final == "+JOIN: Joined already":
            return True, final
        for line in lines:
            if "Network joined" in line:
                return True, line
        return False, lines[-1] if lines else final

    # -- send / recv ----------------------------------------------------------------------
    async def send(self, frame):
        if self._ch is None:
            raise RadioError("lorawan: send before open")
        if len(frame) > self.mtu:
            raise RadioError("lorawan: frame of %d bytes exceeds the %d-byte payload limit "
                             "of %s DR%d" % (len(frame), self.mtu, self.region, self.dr))
        if not frame:
            await self.poll()
            return
        data = hexlify(frame).decode().upper()
        if self.module == "rak3172":
            await self._rak_uplink(self.port, data)
        else:
            await self._e5_uplink('AT+MSGHEX="%s"' % data)

    async def poll(self):
        """An uplink without application data, only to open the receive windows."""
        if self._ch is None:
            raise RadioError("lorawan: poll before open")
        if self.module == "rak3172":
            await self._rak_uplink(self.poll_port, "00")
        else:
            await self._e5_uplink("AT+MSGHEX")

    async def _rak_uplink(self, port, data):
        ch = self._at()
        ch.take_urcs(_RAK_DONE)
        await ch.command("AT+SEND=%d:%s" % (port, data), timeout=self.cmd_timeout)
        # the modem took the uplink (OK); +EVT:TX_DONE closes the receive windows. An
        # older RUI3 that does not print it costs tx_timeout, not the frame
        if await ch.wait_urc(_RAK_DONE, self.tx_timeout) is None:
            self._note("no +EVT:TX_DONE within %.0f s of AT+SEND" % self.tx_timeout)
        self._rak_downlinks()

    def _rak_downlinks(self):
        # RUI3 4.x: +EVT:RX_1:<rssi>:<snr>:UNICAST:<port>:<hex>, one line
        # RUI3 3.x: +EVT:RX_1, RSSI -41, SNR 13 / +EVT:UNICAST / +EVT:<port>:<hex>
        for line in self._at().take_urcs(("+EVT:RX", self._rak_data_line)):
            body = line[5:]
            parts = body.split(":")
            if body.startswith("RX_") and len(parts) >= 6:
                self._signal(parts[1], parts[2])
                self._downlink(parts[4], parts[5])
            elif body.startswith("RX_"):
                bits = body.replace(",", " ").split()
                if "RSSI" in bits and "SNR" in bits:
                    self._signal(bits[bits.index("RSSI") + 1], bits[bits.index("SNR") + 1])
            else:
                self._downlink(parts[0], parts[1])

    @staticmethod
    def _rak_data_line(line):
        parts = line[5:].split(":")
        return line.startswith("+EVT:") and len(parts) == 2 and parts[0].isdigit()

    async def _e5_uplink(self, cmd):
        lines, _ = await self._at().command(cmd, ("+MSGHEX: Done",), _E5_SEND_ERRORS,
                                          self.tx_timeout)
        self.pending = False
        for line in lines:
            if line == "+MSGHEX: FPENDING":
                self.pending = True
            elif line.startswith("+MSGHEX: PORT:") and "RX:" in line:
                # +MSGHEX: PORT: 10; RX: "48656C6C6F"
                port = line[14:].split(";")[0].strip()
                self._downlink(port, line.split("RX:")[1].strip().strip('"').replace(" ", ""))
            elif line.startswith("+MSGHEX: RXWIN"):
                bits = line.replace(",", " ").split()
                if "RSSI" in bits and "SNR" in bits:
                    self._signal(bits[bits.index("RSSI") + 1], bits[bits.index("SNR") + 1])

    def _signal(self, rssi, snr):
        try:
            self.rssi, self.snr = int(rssi), float(snr)
        except ValueError:
            pass

    def _downlink(self, port, data):
        try:
            port, payload = int(port), unhexlify(data)
        except ValueError:
            self._note("unreadable downlink dropped")
            return
        if port != self.port or not payload:
            self._note("downlink on port %d (%d bytes) ignored" % (port, len(payload)))
            return
        self._rx.append(payload)

    async def recv(self, timeout):
        if self._ch is None:
            raise RadioError("lorawan: recv before open")
        if not self._rx and self.pending and self.settings.get("autopoll", True):
            await self.poll()
        if self._rx:
            return self._rx.pop(0)
        ch = self._at()
        rx = ("+EVT:RX", self._rak_data_line) if self.module == "rak3172" \
            else ("+MSGHEX: PORT:",)
        deadline = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while not self._rx:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return None
            # class A: nothing comes without an uplink, but a late event may still land
            line = await ch.wait_urc(rx, left / 1000)
            if line is None:
                return None
            if self.module != "rak3172":
                continue                 # the LoRa-E5 reports downlinks inside AT+MSGHEX
            ch.urcs.insert(0, line)
            if line.startswith("+EVT:RX_") and len(line.split(":")) < 7:
                more = await ch.wait_urc((self._rak_data_line,), 0.5)   # 3.x: data follows
                if more is not None:
                    ch.urcs.append(more)
            self._rak_downlinks()
        return self._rx.pop(0)

    async def close(self):
        ch, self._ch = self._ch, None
        self.joined = False
        if ch is not None:
            await ch.close()
