# gateway/app.py: owns the single-channel gateway's loop: one LoRa radio (the device
# firmware's radios.lora set-up, from the same board files) listening on one channel,
# Wi-Fi and one UDP socket to the bridge (`airshake gateway`), spoken to in GWMP v2 like
# a packet forwarder, so B has one gateway interface (docs/LORA_GATEWAY.md).
#   radio task  receive in slices of rx_slice_ms; between slices send the downlink
#               that is due; a packet heard -> PUSH_DATA with its rxpk
#   net task    PULL_DATA every keepalive_s, stat every stat_interval_s; PULL_RESP ->
#               checked (channel, IQ, timing) -> queued -> TX_ACK (NONE or the error)
# Half duplex: while it transmits it hears nothing. It sends only on its own channel:
# a txpk for another frequency or data rate is refused (TX_FREQ). Timing: "imme" goes
# out at once; "tmst" at the gateway's µs counter value (the one it put in the rxpk).
# Settings: gateway.json (README.md): server, eui, wifi, lora, ipol, keepalive_s, ...
# Log lines: "gwmp <event> ...", one per event, never the Wi-Fi password.
import json
import time

import asyncio
from gateway import gwmp
from radios.base import RadioError
from radios.lora import LoraRadio
from radios.udp import UdpRadio

DEFAULTS = {"server": "127.0.0.1:1700", "eui": None, "wifi": None, "lora": {},
            "ipol": True, "keepalive_s": 10, "stat_interval_s": 30, "rx_slice_ms": 250,
            "max_queue": 8, "jit_ahead_s": 3.0}
_NET_MTU = 2048


def log(event, *parts):
    print("gwmp", event, *parts)


class Clock:
    """The gateway's 32-bit µs counter (rxpk/txpk tmst), kept from ticks_ms deltas so it
    runs past the ticks wrap."""

    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0

    def ms(self):
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms

    def tmst(self):
        return (self.ms() * 1000) & 0xFFFFFFFF

    def ms_until(self, tmst):
        """ms from now to the counter value tmst (negative: in the past)."""
        delta = (tmst - self.tmst() + 0x80000000) % 0x100000000 - 0x80000000
        return delta // 1000


class GatewayRadio(LoraRadio):
    """radios.lora.LoraRadio (same board files, same driver set-up) whose recv keeps the
    driver's packet: CRC flag, RSSI (dBm), SNR (the drivers' dB x 4)."""

    async def recv_packet(self, timeout):
        if self._modem is None:
            raise RadioError("lora: recv before open")
        try:
            return await self._modem.recv(timeout_ms=max(1, int(timeout * 1000)))
        except (ValueError, RuntimeError, OSError) as e:
            raise RadioError("lora: recv failed: %s" % e)


def eui_of(cfg):
    if cfg.get("eui"):
        return bytes.fromhex(cfg["eui"])
    try:
        import machine
        mac = machine.unique_id()[:6]
    except (ImportError, AttributeError):
        mac = b"\x00\x00\x00\x00\x00\x01"
    return mac[:3] + b"\xff\xfe" + mac[3:]        # EUI-64 from the MAC, as forwarders do


class Gateway:
    def __init__(self, board, cfg):
        self.cfg = cfg
        lora = dict(cfg.get("lora") or {})
        lora["invert_iq_rx"] = False                 # it hears uplinks (normal IQ)
        lora["invert_iq_tx"] = bool(cfg["ipol"])     # and sends as the devices listen
        self.radio = GatewayRadio(board, {"lora": lora}, log=lambda t: log("radio", t))
        host, port = cfg["server"].rsplit(":", 1)
        wifi = cfg.get("wifi") or None
        self.net = UdpRadio(host, int(port), _NET_MTU,
                            (wifi["ssid"], wifi["password"]) if wifi else None)
        self.eui = eui_of(cfg)
        self.clock = Clock()
        self.queue = []           # [due ms, payload]
        self.stat = {"rxnb": 0, "rxok": 0, "rxfw": 0, "ackr": 0, "dwnb": 0, "txnb": 0}
        self._pushes = 0
        self._acks = 0

    async def run(self):
        await self.net.open()
        await self.radio.open()
        c = self.radio.cfg
        log("ready", "eui=%s" % self.eui.hex(), "server=%s" % self.cfg["server"],
            "freq_khz=%s" % c["freq_khz"], "sf=%s" % c.get("sf", 7), "ipol=%s" % self.cfg["ipol"])
        await asyncio.gather(self.radio_loop(), self.net_loop())

    # -- radio --------------------------------------------------------------------------
    async def radio_loop(self):
        c = self.radio.cfg
        sf, bw, cr = c.get("sf", 7), str(c.get("bw", "125")), c.get("coding_rate", 5)
        while True:
            wait = self.cfg["rx_slice_ms"]
            if self.queue:
                self.queue.sort(key=lambda q: q[0])
                wait = min(wait, self.queue[0][0] - self.clock.ms())
                if wait <= 0:
                    _, payload = self.queue.pop(0)
                    await self.radio.send(payload)
                    self.stat["txnb"] += 1
                    continue
            rx = await self.radio.recv_packet(wait / 1000)
            if rx is None:
                continue
            self.stat["rxnb"] += 1
            crc_ok = getattr(rx, "valid_crc", True)
            if crc_ok:
                self.stat["rxok"] += 1
            snr = None if rx.snr is None else rx.snr / 4
            pk = gwmp.rxpk(bytes(rx), self.clock.tmst(), c["freq_khz"], sf, bw, cr,
                           rx.rssi, snr, crc_ok)
            await self.net.send(gwmp.push_data(self.eui, [pk]))
            self.stat["rxfw"] += 1
            self._pushes += 1

    # -- network ------------------------------------------------------------------------
    async def net_loop(self):
        next_pull = next_stat = self.clock.ms()
        while True:
            now = self.clock.ms()
            if now >= next_pull:
                await self.net.send(gwmp.pull_data(self.eui))
                next_pull = now + int(self.cfg["keepalive_s"] * 1000)
            if now >= next_stat:
                self.stat["ackr"] = 100.0 * self._acks / self._pushes if self._pushes else 0
                await self.net.send(gwmp.push_data(self.eui, stat=dict(self.stat)))
                self._pushes += 1
                next_stat = now + int(self.cfg["stat_interval_s"] * 1000)
            data = await self.net.recv(0.05)
            if data is None:
                continue
            kind, token, txpk = gwmp.read(data)
            if kind == gwmp.PUSH_ACK:
                self._acks += 1
            elif kind == gwmp.PULL_RESP:
                self.stat["dwnb"] += 1
                error = self.schedule(txpk)
                if error != "NONE":
                    log("tx_refused", error)
                await self.net.send(gwmp.tx_ack(token, self.eui, error))
            elif kind is None:
                log("ignored", "%dB" % len(data))

    def schedule(self, txpk):
        """Queue a txpk; returns the TX_ACK error ("NONE" when queued)."""
        c = self.radio.cfg
        datr = "SF%dBW%s" % (c.get("sf", 7), c.get("bw", "125"))
        if abs(float(txpk.get("freq", 0)) * 1000 - c["freq_khz"]) > 0.5 \
                or txpk.get("datr") != datr or bool(txpk.get("ipol")) != bool(self.cfg["ipol"]):
            return "TX_FREQ"                 # one channel, one IQ polarity
        if len(self.queue) >= self.cfg["max_queue"]:
            return "COLLISION_PACKET"
        now = self.clock.ms()
        if txpk.get("imme"):
            due = now
        else:
            ahead = self.clock.ms_until(int(txpk.get("tmst", 0)))
            if ahead < 0:
                return "TOO_LATE"
            if ahead > self.cfg["jit_ahead_s"] * 1000:
                return "TOO_EARLY"
            due = now + ahead
        self.queue.append([due, txpk["payload"]])
        return "NONE"


def load_config(path="gateway.json"):
    cfg = dict(DEFAULTS)
    with open(path) as f:
        cfg.update(json.load(f))
    return cfg


def main():
    import board
    try:
        cfg = load_config()
    except (OSError, ValueError) as e:
        log("error", "gateway.json: %s (see firmware_gateway/README.md)" % e)
        return
    try:
        asyncio.run(Gateway(board, cfg).run())
    except RadioError as e:
        log("error", str(e))
    except KeyboardInterrupt:
        log("stop")
