# airshake_tools.linkemu mp/machine.py (MicroPython, on the device's MICROPYPATH with
# mp/lora): a stand-in `machine` for the unix port, which has no Pin, SPI or UART; the
# firmware's radios/lora.py builds its board's SPI bus and pins from it. It is also the
# board's wiring for the tests' fake radio chips (tests/micropython/fakes: fake_sx127x.py,
# fake_sx126x.py):
# - a pin's level belongs to the pin number, whatever Pin object the code holds; the MCU
#   sets it (Pin.value, init(value=)) and a chip may watch it (its NSS and NRESET); a chip
#   may drive it instead (BUSY, DIO0, DIO1): reading the pin asks the chip, and a rising
#   edge it makes runs the handler Pin.irq registered with IRQ_RISING (the driver's ISR);
# - an SPI bus reaches a chip only when the bus's SCK and MOSI pins are the chip's, and
#   while the chip's NSS pin is low; its answer reaches the MCU only on the chip's MISO
#   pin (a wrong pin in a board file reads 0x00, as a floating line might);
# - idle() lets the attached hardware run (its time-based events), as the MCU's idle
#   wakes on the chip's interrupts.
# WIRING: what runs when the first SPI bus is built, so chips can be soldered on as the
# driver builds its bus (the tests' fake_chips adds its wire(), which reads
# $AIRSHAKE_LORA_CHIP); empty here, where the stand-in `lora` needs no chip.
# PINS and SPIS keep what was asked of them so a test can check the wiring a driver built
# from a board file; UART is refused (AT modems are reached by uart_path).
import time

# (the type comments are for mypy over tools/; MicroPython reads them as comments)
PINS = {}          # type: dict  # pin number -> Pin, every pin a driver touched (the last)
SPIS = []          # type: list  # every SPI built
HARDWARE = []      # type: list  # attached devices with tick(): run by idle(), chips' clock
WIRING = []        # type: list  # callables run once, when the first SPI bus is built

_LEVEL = {}        # type: dict  # pin number -> level the MCU set
_PULL = {}         # type: dict  # pin number -> its pull (pulled up: 1 until driven low)
_DRIVEN = {}       # type: dict  # pin number -> callable: the level a device drives
_WATCH = {}        # type: dict  # pin number -> [callable(level)] devices watching the MCU
_IRQ = {}          # type: dict  # pin number -> (handler, trigger)
_wired = [False]


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.handler = None
        PINS[id] = self
        if pull != -1:
            _PULL[id] = pull
        if value is not None:
            _set(id, value)

    def init(self, mode=-1, pull=-1, value=None):
        self.mode = mode
        if pull != -1:
            _PULL[self.id] = pull
        if value is not None:
            _set(self.id, value)

    def value(self, v=None):
        if v is None:
            src = _DRIVEN.get(self.id)
            if src is not None:
                return 1 if src() else 0
            return _LEVEL.get(self.id, 1 if _PULL.get(self.id) == Pin.PULL_UP else 0)
        _set(self.id, v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        _set(self.id, 1)

    def off(self):
        _set(self.id, 0)

    def irq(self, handler=None, trigger=IRQ_RISING):
        self.handler = handler
        _IRQ[self.id] = (handler, trigger)


def _set(pin, v):
    v = 1 if v else 0
    old = _LEVEL.get(pin, 0)
    _LEVEL[pin] = v
    if v != old:
        for watcher in _WATCH.get(pin, ()):
            watcher(v)


# -- what a device on the board uses ------------------------------------------------------

def watch(pin, callback):
    """callback(level) on every change the MCU makes to pin."""
    _WATCH.setdefault(pin, []).append(callback)


def level(pin, default=1):
    """The level the MCU holds pin at (default before it ever set it: a pulled-up line)."""
    return _LEVEL.get(pin, default)


def drive(pin, source):
    """A device drives pin: source() is its level when read."""
    _DRIVEN[pin] = source


def edge(pin, old, new):
    """A device moved a pin it drives from old to new: run the irq handler on a rising or
    falling edge that the handler asked for (in the device's context, as a hard IRQ)."""
    if old == new:
        return
    handler, trigger = _IRQ.get(pin, (None, 0))
    if handler is not None and trigger & (Pin.IRQ_RISING if new else Pin.IRQ_FALLING):
        handler(PINS.get(pin))


# -- SPI ------------------------------------------------------------------------------------

_BUSES = []        # type: list  # devices with .spi (sck, mosi, miso), .selected(), .xfer()


def attach_spi(device):
    _BUSES.append(device)


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = id
        self.baudrate = baudrate
        self.sck, self.mosi, self.miso = sck, mosi, miso
        SPIS.append(self)
        if not _wired[0]:
            _wired[0] = True
            for wire in WIRING:
                wire()

    def _byte(self, out):
        got = 0
        for dev in _BUSES:
            sck, mosi, miso = dev.spi
            if (self.sck is None or self.sck.id == sck) and \
                    (self.mosi is None or self.mosi.id == mosi) and dev.selected():
                b = dev.xfer(out & 0xFF)
                if self.miso is None or self.miso.id == miso:
                    got = b
        return got

    def write(self, buf):
        for b in buf:
            self._byte(b)

    def read(self, n, write=0):
        buf = bytearray(n)
        self.readinto(buf, write)
        return bytes(buf)

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = self._byte(write)

    def write_readinto(self, out, into):
        if len(out) != len(into):
            raise ValueError("buffers must be the same length")
        for i in range(len(out)):
            into[i] = self._byte(out[i])


class UART:
    def __init__(self, *args, **kw):
        raise ValueError("no UART on the unix port: give the modem a uart_path")


def idle():
    if HARDWARE:
        time.sleep_ms(1)
        for dev in HARDWARE:
            dev.tick()


def unique_id():
    return b"\x00\x01\x02\x03\x04\x05"
