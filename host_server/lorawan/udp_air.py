# host_server.lorawan.udp_air: the radio side of the network-server stand-in for devices
# that speak UDP (the demo's devices behind the link emulator). Each source address is one
# device, given a DevEUI in order of first contact (FIRST_EUI, +1, ...). Every datagram
# is an uplink on the airshake FPort; after it, the receive windows open RX1 then RX2
# (rx1 and rx2 seconds later) and at most one downlink goes back to that address, as in
# class A. The link emulator in front of it models the air (airtime, duty cycle, loss).
from __future__ import annotations

import socket
import threading
from typing import Any

from host_server.lorawan.standin import NetworkStandin

FIRST_EUI = 0x70B3D57ED0000001


class UdpAir:
    def __init__(self, ns: NetworkStandin, host: str = "127.0.0.1", port: int = 0,
                 rx1: float = 0.2, rx2: float = 0.2) -> None:
        self.ns = ns
        self.rx1, self.rx2 = rx1, rx2
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.devices: dict[Any, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="udp-air")
        self._timers: list[threading.Timer] = []

    def dev_eui(self, addr: Any) -> str:
        eui = self.devices.get(addr)
        if eui is None:
            eui = self.devices[addr] = "%016x" % (FIRST_EUI + len(self.devices))
        return eui

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            eui = self.dev_eui(addr)
            if self.ns.uplink(eui, self.ns.fport, data):
                self._later(self.rx1, eui, addr, 1)

    def _later(self, delay: float, eui: str, addr: Any, window: int) -> None:
        timer = threading.Timer(delay, self._window, (eui, addr, window))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _window(self, eui: str, addr: Any, window: int) -> None:
        if self._stop.is_set():
            return
        data = self.ns.downlink(eui, window)
        if data is not None:
            try:
                self.sock.sendto(data, addr)
            except OSError:
                pass
        elif window == 1:
            self._later(self.rx2, eui, addr, 2)

    def start(self) -> UdpAir:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._timers:
            t.cancel()
        self._thread.join(2)
        self.sock.close()
