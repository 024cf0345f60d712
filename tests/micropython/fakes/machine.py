# tests/micropython/fakes/machine.py: a stand-in `machine` for the unix port, which has
# no Pin, SPI or UART. Tests put tests/micropython/fakes first on sys.path (never the
# firmware). Pin and SPI keep what was asked of them so a test can check the wiring a
# driver built from a board file; UART is refused (AT modems are reached by uart_path).
PINS = {}          # pin number -> Pin, every pin a driver touched
SPIS = []          # every SPI built


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
        self._value = value or 0
        self.handler = None
        PINS[id] = self

    def init(self, mode=-1, pull=-1, value=None):
        self.mode = mode
        if value is not None:
            self._value = value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = v

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=IRQ_RISING):
        self.handler = handler


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = id
        self.baudrate = baudrate
        self.sck, self.mosi, self.miso = sck, mosi, miso
        SPIS.append(self)

    def write(self, buf):
        pass

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = 0

    def write_readinto(self, out, into):
        for i in range(len(into)):
            into[i] = 0


class UART:
    def __init__(self, *args, **kw):
        raise ValueError("no UART on the unix port: give the modem a uart_path")


def idle():
    pass


def unique_id():
    return b"\x00\x01\x02\x03\x04\x05"
