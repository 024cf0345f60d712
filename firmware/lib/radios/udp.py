# radios/udp.py: owns UdpRadio, the development radio: one UDP datagram per frame to
# a fixed host:port (server B, or the link emulator on the unix port), over a
# non-blocking socket polled from asyncio. Works on the unix port and on an ESP32 with
# Wi-Fi (the station is brought up in open() when Wi-Fi credentials are given).
import socket
import time

import asyncio
from radios.base import Radio, RadioError

_POLL_MS = 5
_WIFI_TIMEOUT_MS = 15000


async def _wifi_up(ssid, password):
    try:
        import network
    except ImportError:           # the unix port: the host's network is already up
        return
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return
    wlan.connect(ssid, password)
    t0 = time.ticks_ms()
    while not wlan.isconnected():
        if time.ticks_diff(time.ticks_ms(), t0) > _WIFI_TIMEOUT_MS:
            raise RadioError("Wi-Fi: no connection to %s" % ssid)
        await asyncio.sleep_ms(100)


class UdpRadio(Radio):
    def __init__(self, host, port, mtu=1200, wifi=None):
        self.host = host
        self.port = port
        self.mtu = mtu
        self.wifi = wifi          # (ssid, password) or None
        self._sock = None
        self._addr = None

    async def open(self):
        if self.wifi:
            await _wifi_up(self.wifi[0], self.wifi[1])
        try:
            self._addr = socket.getaddrinfo(self.host, self.port)[0][-1]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
        except OSError as e:
            raise RadioError("udp: %s" % e)
        self._sock = s

    async def send(self, frame):
        if self._sock is None:
            raise RadioError("udp: send before open")
        if len(frame) > self.mtu:
            raise RadioError("udp: frame of %d bytes exceeds the MTU %d"
                             % (len(frame), self.mtu))
        try:
            self._sock.sendto(frame, self._addr)
        except OSError as e:
            raise RadioError("udp: send failed: %s" % e)

    async def recv(self, timeout):
        if self._sock is None:
            raise RadioError("udp: recv before open")
        t0 = time.ticks_ms()
        ms = int(timeout * 1000)
        while True:
            try:
                data, addr = self._sock.recvfrom(self.mtu)
                if data:
                    return data
            except OSError as e:
                if e.args[0] not in (11, 35, 110):   # EAGAIN, EWOULDBLOCK (BSD), ETIMEDOUT
                    raise RadioError("udp: recv failed: %s" % e)
            if time.ticks_diff(time.ticks_ms(), t0) >= ms:
                return None
            await asyncio.sleep_ms(_POLL_MS)

    async def close(self):
        s, self._sock = self._sock, None
        if s is not None:
            s.close()
