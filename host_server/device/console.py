# host_server.device.console: the board's serial console without mpremote: opening the
# port (one-line errors), the RTS/DTR hard reset that ESP32 boards' auto-reset circuits
# understand, catching the firmware's boot window (the app waits 3 s after a reset for a
# Ctrl-C before it deep-sleeps), and following the console's lines.
import time
from collections.abc import Callable

import serial

from host_server.errors import UserError
from host_server.device import ports

BAUD = 115200
BOOT_MARK = b"Ctrl-C within"   # device.wakes' boot-window line
PROMPTS = (b">>> ", b"raw REPL")


def open_port(port: str, baud: int = BAUD, timeout: float = 0.2) -> serial.Serial:
    if ports.missing(port):
        raise ports.no_device(port)
    try:
        return serial.Serial(port, baud, timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError) as e:
        if ports.missing(port):
            raise ports.no_device(port)
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise UserError(f"cannot open {port} ({reason}): another program may hold it (close "
                        "serial monitors) or you lack permission (join the dialout group)")


def hard_reset(conn: serial.Serial) -> None:
    """EN low then high with IO0 high: the chip restarts into its firmware."""
    try:
        conn.dtr = False
        conn.rts = True
        time.sleep(0.12)
        conn.rts = False
    except (serial.SerialException, OSError) as e:
        raise UserError(f"cannot reset the board at {conn.port} through RTS/DTR ({e}): press "
                        "its reset button instead")


def catch_boot(port: str, wait: float = 8.0, show: Callable[[str], None] | None = None) -> None:
    """Reset the board and stop its firmware in the boot window, leaving it at the REPL."""
    with open_port(port) as conn:
        hard_reset(conn)
        deadline = time.monotonic() + wait
        seen = b""
        while time.monotonic() < deadline:
            chunk = conn.read(256)
            seen = (seen + chunk)[-512:]
            if chunk and show is not None:
                for line in chunk.decode("utf-8", "replace").splitlines():
                    if line.strip():
                        show("  " + line.rstrip())
            if BOOT_MARK in seen or any(p in seen for p in PROMPTS):
                break
        conn.write(b"\r\x03\x03")
        conn.flush()
        time.sleep(0.3)


def follow(port: str, baud: int = BAUD, duration: float | None = None, reset: bool = False,
           out: Callable[[str], None] | None = None,
           until: Callable[[str], bool] | None = None) -> int:
    """Print the console's lines, each with the host's time, until Ctrl-C, duration, or
    a line for which until(line) is true."""
    write = out or (lambda line: print(line, flush=True))
    end = None if duration is None else time.monotonic() + duration
    lines = 0
    with open_port(port, baud) as conn:
        if reset:
            hard_reset(conn)
        buf = b""
        while end is None or time.monotonic() < end:
            try:
                chunk = conn.read(256)
            except (serial.SerialException, OSError):
                if ports.missing(port):
                    raise UserError(f"the board at {port} went away (unplugged, or its USB "
                                    "restarted in deep sleep): run the monitor again")
                raise
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode("utf-8", "replace").rstrip("\r")
                write(time.strftime("%H:%M:%S ") + text)
                lines += 1
                if until is not None and until(text):
                    return lines
    if buf.strip():
        write(time.strftime("%H:%M:%S ") + buf.decode("utf-8", "replace").rstrip())
        lines += 1
    return lines
