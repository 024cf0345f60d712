# host_server.device.ports: which serial ports exist, which of them look like a board
# (a USB serial adapter or the chip's own USB), and the --port choice every device command
# shares: the given port checked to exist, or the one board found.
import os
from dataclasses import dataclass

from serial.tools import list_ports

from host_server.errors import UserError

# USB vendor IDs of the serial chips on ESP32 boards: Espressif native USB, Silicon Labs
# CP210x, WCH CH340/CH9102, FTDI
KNOWN_VIDS = {0x303A: "Espressif", 0x10C4: "Silicon Labs", 0x1A86: "WCH", 0x0403: "FTDI"}

LIST_HINT = "list ports with `airshake device ports`"


@dataclass
class Port:
    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None

    @property
    def usb(self) -> bool:
        return self.vid is not None and self.pid is not None

    def describe(self) -> str:
        if not self.usb:
            return f"{self.device}  (not USB: {self.description})"
        maker = KNOWN_VIDS.get(self.vid or 0, "")
        ids = f"{self.vid:04x}:{self.pid:04x}"
        serial = f" serial {self.serial_number}" if self.serial_number else ""
        return f"{self.device}  USB {ids} {maker} {self.description}{serial}".rstrip()


def list_all() -> list[Port]:
    return [Port(p.device, p.description or "", p.vid, p.pid, p.serial_number)
            for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def boards() -> list[Port]:
    """USB serial ports, where a board would be (as `mpremote connect auto` decides)."""
    return [p for p in list_all() if p.usb]


def missing(port: str) -> bool:
    """True when port names a device file that is not there (COM3, rfc2217:// are kept)."""
    return port.startswith("/") and not os.path.exists(port)


def no_device(port: str) -> UserError:
    return UserError(f"no device at {port}: is the board plugged in? {LIST_HINT}")


def resolve(port: str | None) -> str:
    """The port to use: --port if given (it must exist), else the only board found."""
    if port:
        if missing(port):
            raise no_device(port)
        return port
    found = boards()
    if not found:
        raise UserError("no device found: plug in the board or pass --port")
    if len(found) > 1:
        names = ", ".join(p.device for p in found)
        raise UserError(f"{len(found)} boards found ({names}): pass --port to choose one")
    return found[0].device
