# tests/micropython/fakes/fake_sx126x.py: an SX1261/SX1262 LoRa transceiver behind the
# fake machine's SPI bus and pins, modelled on the datasheet (Semtech SX1261/2 rev 2.1)
# closely enough for micropython-lib's lora-sx126x driver to configure it, send and
# receive through it:
# - the command interface: an opcode, its parameters, and for the Get commands the status
#   byte then the data (GetStatus, GetIrqStatus, GetDeviceErrors, GetRxBufferStatus,
#   GetPacketStatus, ReadRegister, ReadBuffer); every answer byte carries the status
#   (chip mode in bits 6:4, command status in bits 3:1: 4 for an unknown opcode);
# - BUSY: high while the chip works after each command (20 us; 3.5 ms after a reset or a
#   Calibrate, 400 us waking from Sleep) and throughout Sleep; a command sent while BUSY
#   is lost (and recorded in .errors); NSS falling wakes the chip from Sleep;
# - modes STBY_RC, STBY_XOSC, TX, RX (single with or without timeout, continuous), Sleep
#   (warm start keeps the configuration); TX and RX fall back to STBY_RC; with a TCXO on
#   DIO3 (tcxo=mV) the crystal starts only after SetDIO3AsTCXOCtrl: until then STBY_XOSC,
#   TX and RX fail with XOSC_START_ERR (OpError 0x20) and command status 5;
# - IRQs: a flag is raised only when its IrqMask bit is set (all masked at power-up, DS
#   13.3.1), DIO1 is high while a flag of its DIO1 mask is, ClearIrqStatus clears;
# - the 256-byte data buffer with the TX and RX base addresses, registers (sync word at
#   0x0740, the driver's workaround registers), the LoRa packet and modulation params;
# - the channel on the air from SetRfFrequency, SetModulationParams, the sync word (the
#   SX127x form 0xYZ is the register value 0xY4Z4) and SetPacketParams' InvertIQ;
#   RssiPkt = -2 x RSSI, SnrPkt = 4 x SNR.
# Not modelled: FSK, CAD, the PA/OCP, calibration results, CRC or header errors,
# implicit-header length mismatches.
import time

import machine
from fake_chips import Radio, time_on_air_us

SLEEP, STBY_RC, STBY_XOSC, FS, RX, TX = 0, 2, 3, 4, 5, 6
TX_DONE, RX_DONE, HEADER_VALID, TIMEOUT = 0x001, 0x002, 0x010, 0x200
_BW_HZ = {0x00: 7800, 0x08: 10400, 0x01: 15600, 0x09: 20800, 0x02: 31250, 0x0A: 41700,
          0x03: 62500, 0x04: 125000, 0x05: 250000, 0x06: 500000}
_GET_LEN = {0xC0: 1, 0x12: 3, 0x17: 3, 0x13: 3, 0x14: 4}   # Get commands: answer bytes
_REG_RESET = {0x0740: 0x14, 0x0741: 0x24, 0x0736: 0x0D, 0x08AC: 0x94, 0x0889: 0x04,
              0x08D8: 0x00, 0x0902: 0x00, 0x0944: 0x00}
_KNOWN = (0x80, 0x82, 0x83, 0x84, 0x86, 0x89, 0x8A, 0x8B, 0x8C, 0x8E, 0x8F, 0x95, 0x97,
          0x98, 0x9D, 0x08, 0x02, 0x07, 0x0D, 0x0E, 0x1D, 0x1E, 0x12, 0x13, 0x14, 0x17,
          0xC0)


class SX126x(Radio):
    def __init__(self, pins, kind="sx1262"):
        Radio.__init__(self, (pins["sck"], pins["mosi"], pins["miso"]), pins["cs"])
        self.kind = kind
        self.pins = pins
        self.tcxo_mv = pins.get("tcxo")
        self.in_reset = False
        self.commands = []               # opcodes in the order the chip executed them
        self._dio1 = pins.get("dio1")
        self._dio1_last = [0]
        self._power_on()
        machine.watch(self.cs, self._nss)
        if "reset" in pins:
            machine.watch(pins["reset"], self._nreset)
        machine.drive(pins["busy"], self._busy_level)
        if self._dio1 is not None:
            machine.drive(self._dio1, self._dio1_level)

    def _power_on(self):
        self.mode = STBY_RC
        self.cmd_status = 0
        self.op_error = 0
        self.xosc_ok = not self.tcxo_mv
        self.irq = 0
        self.irq_mask = 0
        self.dio1_mask = 0
        self.buf = bytearray(256)
        self.regs = dict(_REG_RESET)
        self.tx_base = 0
        self.rx_base = 0
        self.rx_len = 0
        self.rx_start = 0
        self.pkt_rssi = 0
        self.pkt_snr = 0
        self.freq_raw = 0
        self.sf, self.bw, self.cr, self.ldro = 7, 0x04, 1, 0
        self.preamble, self.implicit, self.pay_len, self.crc, self.invert = 12, 0, 0xFF, 1, 0
        self.packet_type = 0
        self.warm = True
        self.continuous = False
        self._wakeup = False
        self._lost = False
        self._answer = None
        self._busy_until = time.ticks_add(time.ticks_us(), 3500)
        self._in = None
        self.stop()

    # -- pins -------------------------------------------------------------------------------
    def _nreset(self, level):
        self.in_reset = not level
        if level:
            self._power_on()
            self._update_dio1()

    def _busy_level(self):
        self.tick()
        if self.in_reset or self.mode == SLEEP:
            return 1
        return 1 if time.ticks_diff(self._busy_until, time.ticks_us()) > 0 else 0

    def _dio1_level(self):
        self.tick()
        return 1 if self.irq & self.dio1_mask else 0

    def _update_dio1(self):
        if self._dio1 is None:
            return
        new = 1 if self.irq & self.dio1_mask else 0
        old, self._dio1_last[0] = self._dio1_last[0], new
        machine.edge(self._dio1, old, new)

    def _busy_for(self, us):
        self._busy_until = time.ticks_add(time.ticks_us(), us)

    def selected(self):
        return not self.in_reset and Radio.selected(self)

    def _nss(self, level):
        if self.in_reset:
            return
        if not level:                                   # falling: a command starts
            self.tick()
            if self.mode == SLEEP:
                self.mode = STBY_RC                     # NSS wakes the chip
                if not self.warm:
                    self._power_on()
                self._busy_for(400)
                self._in = None                         # the waking pulse carries nothing
                self._wakeup = True
                return
            self._wakeup = False
            self._in = bytearray()
            self._lost = time.ticks_diff(self._busy_until, time.ticks_us()) > 0
            self._answer = None
        else:                                           # rising: execute
            data, self._in = self._in, None
            if data and not self._wakeup:
                if self._lost:
                    self.errors.append("command %02x sent while BUSY" % data[0])
                else:
                    self._execute(bytes(data))

    def status(self):
        return ((self.mode & 7) << 4) | ((self.cmd_status & 7) << 1)

    # -- SPI --------------------------------------------------------------------------------
    def xfer(self, b):
        if self._in is None:
            return 0xFF
        i = len(self._in)
        self._in.append(b)
        if self._lost:
            return 0xFF
        if i == 0:
            return self.status()
        op = self._in[0]
        if op in _GET_LEN:
            if self._answer is None:
                self._answer = self._get(op)
            return self._answer[i - 1] if i - 1 < len(self._answer) else 0
        if op == 0x1D:                                 # ReadRegister: addr(2), NOP, data
            if i <= 3:
                return self.status()
            addr = ((self._in[1] << 8) | self._in[2]) + i - 4
            return self.regs.get(addr, 0)
        if op == 0x1E:                                 # ReadBuffer: offset, NOP, data
            if i <= 2:
                return self.status()
            return self.buf[(self._in[1] + i - 3) & 0xFF]
        return self.status()

    def _get(self, op):
        st = self.status()
        if op == 0x12:
            return bytes((st, self.irq >> 8, self.irq & 0xFF))
        if op == 0x17:
            return bytes((st, self.op_error >> 8, self.op_error & 0xFF))
        if op == 0x13:
            return bytes((st, self.rx_len, self.rx_start))
        if op == 0x14:
            return bytes((st, self.pkt_rssi, self.pkt_snr, self.pkt_rssi))
        return bytes((st,))

    # -- commands ----------------------------------------------------------------------------
    def _execute(self, d):
        op = d[0]
        self.commands.append(op)
        self._busy_for(20)
        if op not in _KNOWN:
            self.cmd_status = 4
            self.errors.append("unknown opcode %02x" % op)
            return
        self.cmd_status = 0
        a = d[1:]

        def u(n, at=0):
            v = 0
            for x in a[at:at + n]:
                v = (v << 8) | x
            return v
        if op == 0x80:                                  # SetStandby
            self.stop()
            if a[0] == 1 and not self.xosc_ok:
                self._xosc_fail()
                self.mode = STBY_RC
            else:
                self.mode = STBY_XOSC if a[0] == 1 else STBY_RC
        elif op == 0x84:                                # SetSleep
            self.stop()
            self.warm = bool(a[0] & 0x04)
            self.mode = SLEEP
        elif op == 0x83:                                # SetTx
            if not self._xosc():
                return
            data = bytes(self.buf[(self.tx_base + i) & 0xFF] for i in range(self.pay_len))
            self.mode = TX
            self.start_tx(data, self.toa_us(self.pay_len))
            self._busy_for(100)
        elif op == 0x82:                                # SetRx
            if not self._xosc():
                return
            t = u(3)
            self.mode = RX
            self.continuous = t == 0xFFFFFF
            self.start_rx(None if t in (0, 0xFFFFFF) else t * 15625 // 1000)
            self._busy_for(100)
        elif op == 0x86:
            self.freq_raw = u(4)
        elif op == 0x8A:
            self.packet_type = a[0]
        elif op == 0x8B:
            self.sf, self.bw, self.cr, self.ldro = a[0], a[1], a[2], a[3]
            if self.bw not in _BW_HZ or not 5 <= self.sf <= 12 or not 1 <= self.cr <= 4:
                self.cmd_status = 4
                self.errors.append("SetModulationParams %s" % bytes(a[:4]).hex())
        elif op == 0x8C:
            self.preamble, self.implicit = u(2), a[2]
            self.pay_len, self.crc, self.invert = a[3], a[4], a[5]
        elif op == 0x8F:
            self.tx_base, self.rx_base = a[0], a[1]
        elif op == 0x0E:                                # WriteBuffer
            for i, x in enumerate(a[1:]):
                self.buf[(a[0] + i) & 0xFF] = x
        elif op == 0x0D:                                # WriteRegister
            addr = u(2)
            for i, x in enumerate(a[2:]):
                self.regs[addr + i] = x
        elif op == 0x08:                                # SetDioIrqParams
            self.irq_mask, self.dio1_mask = u(2), u(2, 2)
            self._update_dio1()
        elif op == 0x02:                                # ClearIrqStatus
            self.irq &= ~u(2) & 0xFFFF
            self._update_dio1()
        elif op == 0x07:                                # ClearDeviceErrors
            self.op_error = 0
        elif op == 0x97:                                # SetDIO3AsTCXOCtrl
            if self.tcxo_mv:
                volts = (1600, 1700, 1800, 2200, 2400, 2700, 3000, 3300)[a[0] & 7]
                if volts >= self.tcxo_mv:
                    self.xosc_ok = True
                    # the XOSC start attempted before the TCXO had power (DS 13.3.6)
                    self.op_error |= 0x20
                else:
                    self.errors.append("TCXO supply %d mV below the part's %d mV"
                                       % (volts, self.tcxo_mv))
            else:
                self.errors.append("SetDIO3AsTCXOCtrl without a TCXO on DIO3")
        elif op in (0x89, 0x98):                        # Calibrate, CalibrateImage
            self._busy_for(3500)

    def _xosc(self):
        if self.xosc_ok:
            return True
        self._xosc_fail()
        return False

    def _xosc_fail(self):
        self.op_error |= 0x20                           # XOSC_START_ERR
        self.cmd_status = 5

    def _raise(self, bits):
        self.irq |= bits & self.irq_mask
        self._update_dio1()

    # -- the modem configuration as the chip holds it ----------------------------------------
    def freq_khz(self):
        return (self.freq_raw * 125 + 65536) // 131072    # F = RfFreq * 32 MHz / 2^25

    def bw_hz(self):
        return _BW_HZ.get(self.bw, 125000)

    def toa_us(self, n):
        return time_on_air_us(self.sf, self.bw_hz(), self.cr, self.preamble, n, self.crc,
                              self.implicit, self.ldro, sx126x=True)

    def syncword(self):
        sw = (self.regs.get(0x0740, 0) << 8) | self.regs.get(0x0741, 0)
        if sw & 0x0F0F == 0x0404:
            return ((sw >> 8) & 0xF0) | ((sw >> 4) & 0x0F)
        return sw

    def channel(self):
        return (self.freq_khz(), self.sf, self.bw_hz() // 100, self.syncword(),
                bool(self.invert))

    # -- radio events ------------------------------------------------------------------------
    def on_tx_done(self):
        self.mode = STBY_RC
        self._raise(TX_DONE)

    def on_rx(self, payload, rssi, snr):
        for i, b in enumerate(payload):
            self.buf[(self.rx_base + i) & 0xFF] = b
        self.rx_len, self.rx_start = len(payload), self.rx_base
        self.pkt_rssi = max(0, min(255, -2 * rssi))
        self.pkt_snr = max(-128, min(127, 4 * snr)) & 0xFF
        if not self.continuous:
            self.mode = STBY_RC
            self.stop()
        self._raise(RX_DONE | HEADER_VALID)

    def on_rx_timeout(self):
        self.mode = STBY_RC
        self._raise(TIMEOUT)
