# radios/at.py: owns the AT-command channel to a modem: the serial transport (an ESP32
# machine.UART, or a tty/pty path on the unix port, settings "uart_path"), line framing,
# one command at a time up to its final result line, unsolicited result codes (URCs)
# kept apart, raw bytes after a "> " prompt, length-prefixed binary inside a response,
# and RadioError on an error reply or a timeout, naming the modem and the command.
# Secrets (keys) registered with the channel never reach a log line or an error message:
# they are masked, and so is anything after APPKEY/NWKKEY/APPSKEY/NWKSKEY on a line.
import time

import asyncio
from micropython import const
from radios.base import Radio, RadioError

_READ = const(256)
_MAX_URCS = const(32)
_MAX_BUF = const(4096)

# final lines that mean "this command failed", common to the dialects used here
ERRORS = ("ERROR", "+CME ERROR", "+CMS ERROR", "AT_ERROR", "AT_PARAM_ERROR",
          "AT_BUSY_ERROR", "AT_NO_NETWORK_JOINED", "AT_COMMAND_NOT_FOUND",
          "AT_TEST_PARAM_OVERFLOW", "AT_RX_ERROR", "AT_NO_CLASSB_ENABLE")
_KEY_WORDS = ("APPKEY", "NWKKEY", "APPSKEY", "NWKSKEY")


def open_transport(settings):
    """The modem's serial stream: a tty/pty path when settings has "uart_path" (the unix
    port, the tests), else machine.UART(settings["uart"], baud, tx, rx)."""
    path = settings.get("uart_path")
    if path:
        return _open_tty(path)
    try:
        from machine import UART
        return UART(settings.get("uart", 1), baudrate=settings.get("baud", 115200),
                    tx=settings["tx"], rx=settings["rx"], timeout=0, rxbuf=2048)
    except (ImportError, AttributeError):
        raise RadioError("no machine.UART on this port: set uart_path to a tty")
    except (KeyError, ValueError, OSError) as e:
        raise RadioError("UART %s: %s" % (settings.get("uart"), e))


def _open_tty(path):
    try:
        f = open(path, "r+b")
    except OSError as e:
        raise RadioError("modem port %s: %s" % (path, e))
    try:
        import termios  # type: ignore
        fd = f.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[6][6] = 0          # VMIN: a read returns what is there, never waits for more
        attrs[6][5] = 0          # VTIME
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (ImportError, AttributeError, OSError):
        pass
    return f


def _text(raw):
    try:
        return bytes(raw).decode()
    except Exception:            # line noise: keep it printable
        return "".join(chr(b) if 32 <= b < 127 else "?" for b in raw)


def _matches(line, patterns):
    for p in patterns:
        if (line.startswith(p) if isinstance(p, str) else p(line)):
            return True
    return False


class AtChannel:
    """One modem behind one serial stream. urc: prefixes of the lines the modem sends
    unprompted; they are queued in self.urcs whenever they arrive."""

    def __init__(self, stream, name="modem", urc=(), log=None):
        self.name = name
        self.urc = tuple(urc)
        self.urcs = []
        self.log = log
        self._s = stream
        self._r = asyncio.StreamReader(stream)
        self._w = asyncio.StreamWriter(stream, {})
        self._buf = b""
        self._secrets = []
        self._lock = asyncio.Lock()
        self._empty = 0

    # -- secrets and logs -------------------------------------------------------------
    def secret(self, value):
        """Never show value (a key) in a log line or an error message."""
        if value:
            for v in (value, value.upper(), value.lower()):
                if v not in self._secrets:
                    self._secrets.append(v)

    def mask(self, text):
        for s in self._secrets:
            text = text.replace(s, "***")
        up = text.upper()
        for word in _KEY_WORDS:
            i = up.find(word)
            if i >= 0 and len(text) > i + len(word) + 1:
                return text[:i + len(word) + 1] + "***"
        return text

    def _log(self, arrow, text):
        if self.log is not None:
            self.log("at %s %s %s" % (self.name, arrow, self.mask(text)))

    def error(self, cmd, what):
        return RadioError("%s: %s %s" % (self.name, self.mask(cmd), self.mask(what)))

    # -- bytes in and out ---------------------------------------------------------------
    async def _write(self, data):
        self._w.write(data)
        await self._w.drain()

    async def _fill(self, deadline):
        """Read more bytes into the buffer; False once the deadline has passed."""
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            return False
        data = b""
        try:
            data = await asyncio.wait_for_ms(self._r.read(_READ), left)
        except asyncio.TimeoutError:
            return False
        except OSError as e:
            raise RadioError("%s: serial port failed: %s" % (self.name, e))
        if not data:
            # a tty whose other end is gone reads empty for ever; a UART may once
            self._empty += 1
            if self._empty > 3:
                raise RadioError("%s: serial port closed" % self.name)
            await asyncio.sleep_ms(10)
            return True
        self._empty = 0
        self._buf += data
        if len(self._buf) > _MAX_BUF:          # a modem babbling without line ends
            self._buf = self._buf[-_MAX_BUF // 2:]
        return True

    def _take_line(self):
        """The next non-empty line in the buffer (str, no CR/LF), or None."""
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                return None
            raw = self._buf[:i].strip(b"\r")
            self._buf = self._buf[i + 1:]
            raw = raw.strip()
            if raw:
                return _text(raw)

    def _take_binary(self, header):
        """For a response "<header><n>,<n raw bytes>" (or "<header>0" alone): the raw
        bytes (b"" for zero) once all are buffered, None while incomplete, False when the
        buffer does not start with header."""
        buf = self._buf.lstrip(b"\r\n")
        h = header.encode()
        if not buf.startswith(h[:len(buf)]):
            return False
        if len(buf) < len(h):
            return None
        comma = buf.find(b",", len(h))
        eol = buf.find(b"\r", len(h))
        if comma < 0 and eol < 0:
            return None
        try:
            if comma < 0 or (0 <= eol < comma):
                n = int(buf[len(h):eol] or b"0")
                if n:
                    raise ValueError
                self._buf = buf[eol:]
                return b""
            n = int(buf[len(h):comma])
        except ValueError:
            raise RadioError("%s: unreadable %s line" % (self.name, header.strip()))
        if len(buf) < comma + 1 + n:
            return None
        data = bytes(buf[comma + 1:comma + 1 + n])
        self._buf = buf[comma + 1 + n:]
        return data

    def _stash_lines(self):
        # complete lines already buffered before a command belong to no command: they
        # are unsolicited (or late answers to a command that timed out)
        while True:
            line = self._take_line()
            if line is None:
                return
            self._log("<", line)
            self._queue(line)

    def _queue(self, line):
        self.urcs.append(line)
        if len(self.urcs) > _MAX_URCS:
            self.urcs.pop(0)

    # -- commands ---------------------------------------------------------------------
    async def command(self, cmd, expect=("OK",), errors=ERRORS, timeout=2.0, payload=None,
                      binary=None):
        """Send cmd and collect the lines up to its final line: a line starting with one
        of `expect` (str prefixes or predicates) returns (lines, final); one starting
        with one of `errors`, or no final line within `timeout` seconds, raises
        RadioError. payload: raw bytes written after the modem's "> " prompt. binary: a
        response header ("+CARECV: ") after which a length and raw bytes follow; those
        bytes appear in lines as a bytes item. Echo and URCs are not in lines."""
        async with self._lock:
            self._stash_lines()
            self._log(">", cmd)
            await self._write(cmd.encode() + b"\r\n")
            deadline = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
            if payload is not None:
                await self._prompt(cmd, deadline)
                self._log(">", "<%d bytes>" % len(payload))
                await self._write(payload)
            lines = []
            while True:
                if binary is not None:
                    data = self._take_binary(binary)
                    if data is None:
                        if not await self._fill(deadline):
                            raise self._timeout(cmd, timeout)
                        continue
                    if data is not False:
                        self._log("<", "%s<%d bytes>" % (binary, len(data)))
                        lines.append(data)
                        continue
                line = self._take_line()
                if line is None:
                    if not await self._fill(deadline):
                        raise self._timeout(cmd, timeout)
                    continue
                self._log("<", line)
                if line == cmd:                       # echo
                    continue
                if _matches(line, errors):
                    raise self.error(cmd, "failed: " + line)
                if _matches(line, expect):
                    return lines, line
                if self.urc and _matches(line, self.urc):
                    self._queue(line)
                    continue
                lines.append(line)

    def _timeout(self, cmd, timeout):
        return self.error(cmd, "got no answer within %.1f s" % timeout)

    async def _prompt(self, cmd, deadline):
        while True:
            buf = self._buf.lstrip(b"\r\n")
            if buf.startswith(b">"):
                self._buf = buf[1:].lstrip(b" ")
                return
            line = None
            if b"\n" in buf:
                line = self._take_line()
            if line is not None:
                self._log("<", line)
                if line != cmd and not (self.urc and _matches(line, self.urc)):
                    raise self.error(cmd, "failed: " + line)
                if line != cmd:
                    self._queue(line)
                continue
            if not await self._fill(deadline):
                raise self.error(cmd, "got no '>' prompt")

    async def sync(self, cmd="AT", expect=("OK",), tries=3, timeout=1.0):
        """Send cmd until the modem answers (a modem waking up may eat the first)."""
        for i in range(tries):
            try:
                await self.command(cmd, expect, timeout=timeout)
                return True
            except RadioError:
                pass
        return False

    # -- unsolicited lines ----------------------------------------------------------------
    def take_urcs(self, patterns):
        """Remove and return the queued URCs matching patterns, oldest first."""
        out = [u for u in self.urcs if _matches(u, patterns)]
        if out:
            self.urcs = [u for u in self.urcs if not _matches(u, patterns)]
        return out

    async def wait_urc(self, patterns, timeout):
        """The oldest queued or arriving line matching patterns (removed from the queue),
        or None after timeout seconds. Other lines that arrive meanwhile are queued."""
        async with self._lock:
            deadline = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
            while True:
                for i in range(len(self.urcs)):
                    if _matches(self.urcs[i], patterns):
                        return self.urcs.pop(i)
                line = self._take_line()
                if line is None:
                    if not await self._fill(deadline):
                        return None
                    continue
                self._log("<", line)
                self._queue(line)

    async def close(self):
        s, self._s = self._s, None
        if s is None:
            return
        try:
            if hasattr(s, "deinit"):
                s.deinit()
            else:
                s.close()
        except OSError:
            pass


class AtRadio(Radio):
    """What the AT-modem radios share: their channel (self._ch, None until open())
    and a log line prefixed with the radio's KIND."""

    KIND = "modem"
    _ch = None
    log = None

    def _note(self, text):
        if self.log is not None:
            self.log(self.KIND + " " + text)

    def _at(self):
        ch = self._ch
        if ch is None:
            raise RadioError(self.KIND + ": the modem is not open")
        return ch
