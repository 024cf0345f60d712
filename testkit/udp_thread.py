"""testkit/udp_thread.py: the shared shells of the test-side UDP peers on loopback.
  UdpThread  one socket served by a background thread (responders, echo servers);
             subclasses implement handle(data, addr).
  UdpPair    two sockets, `front` (its port is `port`) and `back`, each served by its own
             thread (relays: the fragment relay, the LoRa air); subclasses implement
             from_front(data, addr) and from_back(data, addr).
Use either as a context manager, which starts and stops the threads."""
import socket
import threading


def _bound(timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout)
    return sock


class UdpPair:
    front_bufsize = 4096
    back_bufsize = 65536

    def __init__(self, timeout: float = 0.05):
        self.front = _bound(timeout)
        self.back = _bound(timeout)
        self.port = self.front.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, daemon=True,
                             args=(self.front, self.front_bufsize, self.from_front)),
            threading.Thread(target=self._serve, daemon=True,
                             args=(self.back, self.back_bufsize, self.from_back))]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()
        self.front.close()
        self.back.close()

    def _serve(self, sock, bufsize, handle):
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(bufsize)
            except socket.timeout:
                continue
            handle(data, addr)

    def from_front(self, data: bytes, addr) -> None:
        raise NotImplementedError

    def from_back(self, data: bytes, addr) -> None:
        raise NotImplementedError


class UdpThread:
    bufsize = 4096

    def __init__(self, timeout: float = 0.1):
        self.sock = _bound(timeout)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.sock.close()

    def _loop(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(self.bufsize)
            except socket.timeout:
                continue
            self.handle(data, addr)

    def handle(self, data: bytes, addr) -> None:
        raise NotImplementedError
