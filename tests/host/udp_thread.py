"""tests/host/udp_thread.py: a UDP socket on loopback served by a background thread, the
shared shell of the test-side peers (responders, echo servers). Subclasses implement
handle(data, addr); use as a context manager, which starts and stops the thread."""
import socket
import threading


class UdpThread:
    bufsize = 4096

    def __init__(self, timeout: float = 0.1):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
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
