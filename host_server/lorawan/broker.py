# host_server.lorawan.broker: a Mosquitto MQTT broker for the demo and the tests, run from
# Debian's /usr/sbin/mosquitto on a loopback port in its own directory (config, log), no
# persistence, optionally with one user and password, optionally TLS only (cafile,
# certfile, keyfile; require_certificate: clients need a certificate of that CA).
# restart() stops it and starts it again on the same port (a broker restart: every
# client is cut off, sessions lost).
# A missing binary is one UserError line naming the package.
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from host_server.demo.procs import die_with_parent_here
from host_server.errors import UserError

PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL = "install the mosquitto package (Debian/Ubuntu: sudo apt-get install mosquitto)"


def find_mosquitto() -> str | None:
    for path in PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("mosquitto")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path, port: int = 0, user: str = "",
                 password: str = "", tls: dict[str, str] | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise UserError(f"the MQTT broker mosquitto is not installed: {INSTALL}")
        self.binary = binary
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        lines = ["listener %d 127.0.0.1" % self.port, "persistence false",
                 "log_dest file %s" % self.log, "log_type error", "log_type warning",
                 "log_type notice"]
        if os.geteuid() == 0:       # else it drops to user mosquitto: files here unreadable
            lines.append("user root")
        self.tls = bool(tls)
        if tls:
            lines += ["%s %s" % (k, v) for k, v in tls.items()]
        if user:
            pwfile = self.dir / "passwd"
            pwfile.write_text("")
            os.chmod(pwfile, 0o600)
            subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, password],
                           check=True, capture_output=True)
            lines += ["allow_anonymous false", "password_file %s" % pwfile]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % ("mqtts" if self.tls else "mqtt", self.port)

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=die_with_parent_here())
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UserError("mosquitto exited at start (port %d): %s"
                                % (self.port, self._tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise UserError("mosquitto did not listen on port %d within %.0f s: %s"
                        % (self.port, timeout, self._tail()))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
