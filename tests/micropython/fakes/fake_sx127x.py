# tests/micropython/fakes/fake_sx127x.py: an SX1276/77/78/79 LoRa transceiver behind the
# fake machine's SPI bus and pins, modelled on the datasheet (Semtech SX1276/77/78/79
# rev 7) closely enough for micropython-lib's lora-sx127x driver to configure it, send
# and receive through it:
# - SPI: first byte address | 0x80 for a write, then data bytes; bursts auto-increment
#   the address except on RegFifo (0x00), which reads/writes the FIFO at RegFifoAddrPtr;
# - RegOpMode: LongRangeMode changes only into or in Sleep; TX sends RegPayloadLength bytes
#   from RegFifoTxBaseAddr and returns to Standby with TxDone; RX single times out after
#   RegSymbTimeout symbols (RxTimeout) or ends on a packet (RxDone, ValidHeader in
#   explicit mode), then Standby; RX continuous stays, each packet written after the one
#   before (from RegFifoRxBaseAddr at its start); entering Sleep clears the FIFO;
# - RegIrqFlags (write 1 to clear), RegIrqFlagsMask; DIO0 (RegDioMapping1 bits 7:6: 00
#   RxDone, 01 TxDone, 10 CadDone) and DIO1 (bits 5:4: 00 RxTimeout) follow the flags;
# - RegVersion 0x12; NRESET low holds the chip, its rising edge resets every register;
# - the channel on the air comes from the registers the driver wrote: RegFrf, SF and BW
#   in RegModemConfig1/2, RegSyncWord, RegInvertIQ (bit 6 RX inverted, bit 0 TX normal);
#   time on air from SF, BW, coding rate, preamble, CRC, implicit header and LDRO;
# - a received packet's RegPktSnrValue is SNR x 4, RegPktRssiValue RSSI + 157 (HF port,
#   above 525 MHz) or + 164.
# Not modelled: FSK/OOK, CAD, frequency hopping, the LNA, the PA's output, image
# calibration timing, CRC errors.
import machine
from fake_chips import Radio, time_on_air_us

_RESET = {0x01: 0x01, 0x06: 0x6C, 0x07: 0x80, 0x08: 0x00, 0x09: 0x4F, 0x0A: 0x09,
          0x0C: 0x20, 0x0E: 0x80, 0x1D: 0x72, 0x1E: 0x70, 0x1F: 0x64, 0x20: 0x00,
          0x21: 0x08, 0x22: 0x01, 0x23: 0xFF, 0x26: 0x04, 0x31: 0xC3, 0x33: 0x27,
          0x37: 0x0A, 0x39: 0x12, 0x3B: 0x1D, 0x40: 0x00, 0x42: 0x12, 0x4D: 0x84}
_BW_HZ = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)
SLEEP, STDBY, FSTX, TX, FSRX, RXCONT, RXSINGLE, CAD = range(8)
RX_TIMEOUT, RX_DONE, CRC_ERROR, VALID_HEADER, TX_DONE = 0x80, 0x40, 0x20, 0x10, 0x08


class SX127x(Radio):
    def __init__(self, pins):
        Radio.__init__(self, (pins["sck"], pins["mosi"], pins["miso"]), pins["cs"])
        self.pins = pins
        self.in_reset = False
        self._reset()
        machine.watch(self.cs, self._nss)
        if "reset" in pins:
            machine.watch(pins["reset"], self._nreset)
        self._dio = {}
        for name, pin in (("dio0", pins.get("dio0")), ("dio1", pins.get("dio1"))):
            if pin is not None:
                self._dio[name] = (pin, [0])
                machine.drive(pin, self._dio_source(name))

    def _reset(self):
        self.regs = bytearray(0x80)
        for a, v in _RESET.items():
            self.regs[a] = v
        self.image_cal = 0x82            # RegImageCal (0x3B, FSK/OOK page)
        self.fifo = bytearray(256)
        self.rx_byte = 0
        self._addr = None
        self._write = False
        self.stop()

    # -- pins -------------------------------------------------------------------------------
    def _nreset(self, level):
        self.in_reset = not level
        if level:
            self._reset()
            self._update_dio()

    def _nss(self, level):
        if not level:
            self.tick()
        self._addr = None

    def _dio_source(self, name):
        def level():
            self.tick()
            return self._dio_level(name)
        return level

    def _dio_level(self, name):
        flags = self.regs[0x12] & ~self.regs[0x11]
        m = self.regs[0x40]
        if name == "dio0":
            bit = (RX_DONE, TX_DONE, 0x04, 0)[(m >> 6) & 3]
        else:
            bit = (RX_TIMEOUT, 0x02, 0x01, 0)[(m >> 4) & 3]
        return 1 if flags & bit else 0

    def _update_dio(self):
        for name, (pin, last) in self._dio.items():
            new = self._dio_level(name)
            old, last[0] = last[0], new
            machine.edge(pin, old, new)

    def selected(self):
        return not self.in_reset and Radio.selected(self)

    # -- SPI --------------------------------------------------------------------------------
    def xfer(self, b):
        if self._addr is None:
            self._write = bool(b & 0x80)
            self._addr = b & 0x7F
            return 0
        a = self._addr
        if self._write:
            self._reg_write(a, b)
            out = 0
        else:
            out = self._reg_read(a)
        if a != 0x00:
            self._addr = (a + 1) & 0x7F
        return out

    def _lora(self):
        return self.regs[0x01] & 0x80

    def mode(self):
        return self.regs[0x01] & 7

    def _reg_read(self, a):
        if a == 0x00:
            if self.mode() == SLEEP:
                self.errors.append("FIFO read in Sleep")
            p = self.regs[0x0D]
            self.regs[0x0D] = (p + 1) & 0xFF
            return self.fifo[p]
        if a == 0x3B and not self._lora():
            return self.image_cal
        return self.regs[a]

    def _reg_write(self, a, v):
        if a == 0x00:
            if self.mode() == SLEEP:
                self.errors.append("FIFO write in Sleep")
            p = self.regs[0x0D]
            self.fifo[p] = v
            self.regs[0x0D] = (p + 1) & 0xFF
        elif a == 0x01:
            self._opmode(v)
        elif a == 0x12:
            self.regs[0x12] &= ~v & 0xFF
            self._update_dio()
        elif a == 0x42:
            pass                                    # RegVersion is read-only
        elif a == 0x3B and not self._lora():
            self.image_cal = v & 0xBF               # ImageCalStart runs instantly here
        else:
            self.regs[a] = v
            if a in (0x11, 0x40):
                self._update_dio()

    def _opmode(self, v):
        old = self.regs[0x01]
        if (v ^ old) & 0x80 and (old & 7) != SLEEP and (v & 7) != SLEEP:
            self.errors.append("LongRangeMode changed outside Sleep")
            v = (v & 0x7F) | (old & 0x80)
        self.regs[0x01] = v
        mode = v & 7
        if mode == (old & 7) and not (v ^ old) & 0x80:
            return
        self.stop()
        if mode == SLEEP:
            self.fifo = bytearray(256)
        if not v & 0x80:
            if mode in (TX, RXCONT, RXSINGLE):
                self.errors.append("TX/RX asked in FSK/OOK mode")
            return
        if mode == TX:
            base, n = self.regs[0x0E], self.regs[0x22]
            data = bytes(self.fifo[(base + i) & 0xFF] for i in range(n))
            self.start_tx(data, self.toa_us(n))
        elif mode == RXCONT:
            self.rx_byte = self.regs[0x0F]
            self.start_rx(None)
        elif mode == RXSINGLE:
            self.rx_byte = self.regs[0x0F]
            syms = ((self.regs[0x1E] & 3) << 8) | self.regs[0x1F]
            self.start_rx(syms * self.t_sym_us())
        elif mode == CAD:
            self.errors.append("CAD is not modelled")

    # -- the modem configuration as the registers hold it ------------------------------------
    def freq_khz(self):
        frf = (self.regs[0x06] << 16) | (self.regs[0x07] << 8) | self.regs[0x08]
        return (frf * 125 + 1024) // 2048          # F = Frf * 32 MHz / 2^19

    def sf(self):
        return self.regs[0x1E] >> 4

    def bw_hz(self):
        i = self.regs[0x1D] >> 4
        return _BW_HZ[i] if i < len(_BW_HZ) else 0

    def t_sym_us(self):
        return (1 << self.sf()) * 1000000 // (self.bw_hz() or 1)

    def toa_us(self, n):
        r = self.regs
        return time_on_air_us(self.sf(), self.bw_hz(), (r[0x1D] >> 1) & 7,
                              (r[0x20] << 8) | r[0x21], n, r[0x1E] & 0x04, r[0x1D] & 1,
                              r[0x26] & 0x08)

    def channel(self):
        rx = self.mode() in (RXCONT, RXSINGLE) or self.receiving()
        iq = bool(self.regs[0x33] & 0x40) if rx else not self.regs[0x33] & 0x01
        return (self.freq_khz(), self.sf(), self.bw_hz() // 100, self.regs[0x39], iq)

    # -- radio events ------------------------------------------------------------------------
    def on_tx_done(self):
        self.regs[0x01] = (self.regs[0x01] & ~7) | STDBY
        self.regs[0x12] |= TX_DONE
        self._update_dio()

    def on_rx(self, payload, rssi, snr):
        # written from FifoRxByteAddr: RegFifoRxBaseAddr when RX started, then each packet
        # of a continuous receive after the one before (RegFifoRxCurrentAddr: its start)
        base = self.rx_byte
        for i, b in enumerate(payload):
            self.fifo[(base + i) & 0xFF] = b
        self.rx_byte = (base + len(payload)) & 0xFF
        self.regs[0x25] = (self.rx_byte - 1) & 0xFF   # RegFifoRxByteAddr: last byte written
        self.regs[0x10] = base
        self.regs[0x13] = len(payload)
        self.regs[0x19] = max(-128, min(127, snr * 4)) & 0xFF
        self.regs[0x1A] = max(0, min(255, rssi + (157 if self.freq_khz() > 525000 else 164)))
        self.regs[0x12] |= RX_DONE | (0 if self.regs[0x1D] & 1 else VALID_HEADER)
        if self.mode() == RXSINGLE:
            self.regs[0x01] = (self.regs[0x01] & ~7) | STDBY
            self.stop()
        self._update_dio()

    def on_rx_timeout(self):
        self.regs[0x01] = (self.regs[0x01] & ~7) | STDBY
        self.regs[0x12] |= RX_TIMEOUT
        self._update_dio()
