# host_server.demo.run: owns the order of a demo run and its guarantees: check what is
# needed (binaries, ports) before starting anything; CA, CS, B, probe and relay, then the
# devices (deployed, provisioned, running the firmware); the paths other than udp: a
# LoRaWAN network server's MQTT integration in front of B (--via chirpstack|tts), or raw
# LoRa through GWMP gateways and the bridge, whose flows reach B through the relay
# (--via gateway: host_server.gateway.demo_path); the live display while they
# run; then the summary, summary.json and sequence.svg. Whatever happens -- success, an
# error, Ctrl-C or SIGTERM -- every process it started is stopped before it returns, and
# a failure is one UserError line.
from __future__ import annotations

import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from airshake_tools.linkemu import get_profile
from host_server.cert_store.tokens import ADMIN_FILE
from host_server.cert_store.tokens import read_file as read_token
from host_server.demo import devices as dv
from host_server.demo import diagram, services, summary
from host_server.demo.display import Display
from host_server.demo.monitor import DeviceRun, Run
from host_server.demo.options import DEVICE_SUITES, Options, Timing, timing
from host_server.demo.probe import Probe
from host_server.demo.procs import Supervisor
from host_server.errors import UserError

MAX_DEVICES = 50
DEFAULT_TIMEOUT = 45.0    # wall seconds for the devices' wakes (virtual time: plenty)
VIAS = ("udp", "chirpstack", "tts", "gateway")
LORAWAN_VIAS = ("chirpstack", "tts")
VIA_LINK = "lorawan-eu868-dr0"   # --via chirpstack|tts without --link: the LoRaWAN profile
GATEWAY_LINK = "lora-sf7"        # --via gateway: the TTGO board file's SF7, as gateways hear
GATEWAYS = 2                     # --via gateway: simulated gateways hearing every device
OUT_FILES = ("sequence.svg", "summary.json")
SETTLE_S = 0.5            # after the last device ends: let the last log lines arrive


def validate(opts: Options) -> None:
    if opts.via not in VIAS:
        raise UserError(f"--via {opts.via}: choose one of {', '.join(VIAS)}")
    if opts.via in LORAWAN_VIAS and opts.link == Options.link:
        opts.link = VIA_LINK
    try:
        profile = get_profile(opts.link)
    except ValueError as e:
        raise UserError(f"{e} (--link)")
    if opts.via in LORAWAN_VIAS and not profile.class_a:
        raise UserError(f"--via {opts.via} needs a LoRaWAN link: use --link {VIA_LINK}")
    if opts.via == "gateway" and opts.link != GATEWAY_LINK:
        raise UserError(f"--via gateway runs TTGO LoRa32 v1 boards at SF7/125 kHz, where the "
                        f"gateways listen: use --link {GATEWAY_LINK}")
    if not 0.0 <= opts.loss < 1.0:
        raise UserError(f"--loss {opts.loss} is not a probability from 0 up to (not "
                        "including) 1, e.g. 0.2 for 20% of frames lost")
    if not 1 <= opts.devices <= MAX_DEVICES:
        raise UserError(f"--devices {opts.devices}: choose 1 to {MAX_DEVICES}")
    if opts.suite not in DEVICE_SUITES:
        raise UserError(f"--suite {opts.suite}: devices make their own keys for suites 0 "
                        "(X25519) and 2 (P-256) only; suite 1 (RSA) keys are made on a host")
    if opts.timeout is not None and opts.timeout <= 0:
        raise UserError("--timeout must be more than 0 seconds")


@contextmanager
def _signals_as_interrupt(closing: threading.Event) -> Iterator[None]:
    """SIGTERM, and SIGINT even where it was ignored (a background job), end the demo like
    Ctrl-C: KeyboardInterrupt, so the finally blocks stop every process. Once `closing`
    is set they are ignored, so a second Ctrl-C cannot cut the clean-up short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if not closing.is_set():
            raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


class Demo:
    def __init__(self, opts: Options, out: TextIO) -> None:
        self.opts = opts
        self.out = out
        self.profile = get_profile(opts.link)
        self.timing: Timing = timing(self.profile, opts.time)
        self.queue: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.ready = services.Readiness()
        self.display = Display(opts.devices, out)
        self.probe = Probe(opts.devices, on_arrival=lambda a: self.queue.put(("probe", "", a)))
        self.run = Run(self.display, self.probe, opts.devices, self.profile.mtu,
                       wake_from_log=opts.via == "gateway")
        self.sup: Supervisor | None = None
        self.lorawan: Any = None           # host_server.lorawan.demo_path.DemoPath
        self.gateway: Any = None           # host_server.gateway.demo_path.GatewayPath
        self.devices: list[dv.Device] = []
        self.services: list[services.Service] = []
        self.started = time.monotonic()
        # wall seconds from the devices' start; in virtual time the link's modelled
        # minutes take no wall time, in real time the relay sleeps them
        self.timeout = opts.timeout if opts.timeout is not None else DEFAULT_TIMEOUT \
            if self.timing.virtual else max(DEFAULT_TIMEOUT, 4 * self.timing.modelled_s + 20)

    def say(self, text: str) -> None:
        self.display.line(text)

    def _on_line(self, name: str, stream: str, line: str) -> None:
        self.ready.feed(name, stream, line)
        self.queue.put((name, stream, line))

    # -- the run ------------------------------------------------------------------------
    def execute(self, work: Path, out_dir: Path) -> dict[str, Any]:
        o, t = self.opts, self.timing
        micropython = dv.find_micropython(o.micropython)
        if o.via in LORAWAN_VIAS:
            from host_server.lorawan.broker import INSTALL, find_mosquitto
            if find_mosquitto() is None:
                raise UserError(f"--via {o.via} needs the MQTT broker mosquitto: {INSTALL}")
        services.check_port(o.cs_port, socket.SOCK_STREAM, "--cs-port")
        services.check_port(o.b_port, socket.SOCK_DGRAM, "--b-port")
        services.check_port(o.relay_port, socket.SOCK_DGRAM, "--relay-port")
        self.sup = sup = Supervisor(self._on_line, pid_file=work / "pids.txt")
        competitors = summary.Competitors()
        competitors.start()
        self.say("airshake demo: %s (%s), loss %.0f%%, %d device(s), suite %d"
                 % (o.link, self.profile.description, o.loss * 100, o.devices, o.suite))
        self.say("  %s; the device's first retransmission timer %.1f s, %d retries; "
                 "work dir %s" % ("virtual time (relay --virtual: modelled link time, "
                                  "endpoints at real speed)" if t.virtual else "real time",
                                  t.rto_s, t.retries, work))
        self.say("  frame times: the link's one clock when each frame was handed to the "
                 "radio (its duty-cycle wait and the window it was held for follow); the "
                 "devices run for up to %.0f s of wall time (--timeout)" % self.timeout)
        step = self._stepper(6)
        step("CA: airshake ca init, airshake ca issue-server --suite %d" % o.suite)
        ca_dir, key_dir = services.make_pki(work, o.suite)
        step("certificate store: airshake cs serve (SQLite)")
        cs = services.start_cs(sup, self.ready, work, ca_dir, o.cs_port)
        self.say("      CS at http://127.0.0.1:%d, store %s" % (cs.port, work / "cs.db"))
        step("server B: airshake server (fragment MTU %d, the link's)" % self.profile.mtu)
        b_flags: list[str] = []
        if o.via in LORAWAN_VIAS:
            from host_server.lorawan import demo_path
            self.lorawan = demo_path.start(o.via, work, self.profile.region, self.profile.dr)
            b_flags = self.lorawan.b_flags
        b = services.start_b(sup, self.ready, work, ca_dir, key_dir, cs.port, o.b_port,
                             self.profile.mtu, class_a=self.profile.class_a, extra=b_flags)
        self.say("      B on udp 127.0.0.1:%d" % b.port)
        if self.lorawan is not None:
            self.say("      B %s; the link emulator forwards to the network server's radio "
                     "side" % self.lorawan.describe())
        step("link emulator: python -m airshake_tools.linkemu --profile %s --loss %g --seed "
             "%d%s" % (o.link, o.loss, o.seed, " --virtual" if t.virtual else ""))
        tap_b = self.probe.open_b_side(b.port if self.lorawan is None
                                       else self.lorawan.air_port)
        relay = services.start_relay(sup, self.ready, work, o.link, o.loss, o.seed,
                                     t.virtual, o.relay_port, tap_b)
        gateway = o.via == "gateway"
        ports = self.probe.open_device_side(relay.port, self.run.device_of if gateway
                                            else None)
        self.probe.start()
        self.say("      relay on udp 127.0.0.1:%d; %s send to the probe in front of it "
                 "(port%s %s)" % (relay.port, "the bridge's device flows" if gateway
                                  else "devices", "" if len(ports) == 1 else "s",
                                  ", ".join(map(str, ports))))
        if gateway:
            ports = self._start_gateway(work, ports[0])
        step("devices: deploy the firmware (board %s), provision through mpremote on a pty"
             % (self.gateway.device_board if gateway else dv.BOARD))
        self.services = [cs, b, relay]
        self._provision(work, ports, micropython, cs.port, ca_dir)
        step("run: micropython main.py, once per wake (a locked device's process ends "
             "with its wake, as deep sleep ends a board's): wake 1: first contact; wake 2: "
             "one record; then device 1's wake 3: a later handshake")
        self._run_devices(micropython)
        sup.stop(relay.proc)            # SIGTERM: the relay writes its summary event
        seen = self.gateway.close() if self.gateway is not None else None
        self._drain(0.2)
        wall = time.monotonic() - self.started
        s = summary.collect(self.run, o, t, wall, competitors.result(), competitors.notes,
                            gateway=seen)
        self.display.close()
        for line in summary.render(s):
            self.out.write(line + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        svg = diagram.write(out_dir / "sequence.svg", self.run, s)
        summary.write_json(out_dir / "summary.json", s)
        self.out.write("picture: %s (sequence diagram of device 1)\n" % svg)
        self.out.write("numbers: %s\n" % (out_dir / "summary.json"))
        self.out.flush()
        return s

    def _start_gateway(self, work: Path, bridge_to: int) -> list[int]:
        """--via gateway: the stand-in LoRa air, GATEWAYS simulated GWMP gateways on it and
        the bridge (airshake gateway) sending each device's flow to the probe at
        bridge_to; returns the devices' "ports" (the bridge's, for their config only: a
        raw-LoRa radio sends on the air)."""
        from host_server.gateway.demo_path import start_gateway_path
        self.gateway = path = start_gateway_path(work, bridge_to, gateways=GATEWAYS,
                                                 seed=self.opts.seed)
        with open(work / "pids.txt", "a", encoding="utf-8") as f:     # with the others
            f.writelines("%d %s\n" % (p.popen.pid, p.name) for p in path.procs)
        self.say("      the LoRa air on udp 127.0.0.1:%d (python -m airshake_tools.linkemu.air), "
                 "%d GWMP gateways on it (python -m airshake_tools.linkemu.gwmp_gateway), the "
                 "bridge on udp 127.0.0.1:%d (airshake gateway); loss and air time are the "
                 "relay's, between the bridge and B" % (path.air_port, path.gateways,
                                                        path.bridge_port))
        return [path.bridge_port] * self.opts.devices

    def _stepper(self, total: int) -> Any:
        count = [0]

        def step(text: str) -> None:
            count[0] += 1
            self.say("[%d/%d] %s" % (count[0], total, text))
        return step

    def _provision(self, work: Path, ports: list[int], micropython: str, cs_port: int,
                   ca_dir: Path) -> None:
        assert self.sup is not None
        o, t = self.opts, self.timing
        path = self.gateway
        files = dv.stage_firmware(work, path.device_board if path else dv.BOARD)
        settings = {"mtu": self.profile.mtu, "rto_s": t.rto_s, "retries": t.retries,
                    "reply_timeout_s": t.reply_timeout_s, "radio": "udp", "interval_s": 60}
        if path is not None:
            settings.update(path.device_config)
        for i, port in enumerate(ports, 1):
            dev = dv.Device(i, work / ("dev%d" % i), port)
            if path is not None:
                dev.board, dev.radio, dev.env = (path.device_board, settings["radio"],
                                                 path.device_env)
            if i == 1 and o.full_deploy:
                dv.empty_root(dev.root, settings)
            else:
                dv.make_root(files, dev.root, settings)
            self.devices.append(dev)
        self.say("      %d files staged by the deploy code into each device's filesystem%s"
                 % (sum(1 for p in files.rglob("*") if p.is_file()) - 1,
                    "; device 1 through mpremote" if o.full_deploy else ""))
        cs_url = "http://127.0.0.1:%d" % cs_port
        admin_token = read_token(work / ADMIN_FILE)   # the CS made it at its first start

        def one(dev: dv.Device) -> str:
            assert self.sup is not None
            show = (lambda line: self.say("      dev1 " + line.strip())) if dev.index == 1 \
                else (lambda _line: None)
            id_hex = dv.provision(dev, micropython, cs_url,
                                  ca_dir / "ca.der", o.suite, o.full_deploy and dev.index == 1,
                                  show, admin_token, services.SERVER_NAME)
            self.display.advance(dev.index, "provisioned")
            if dev.index > 1:
                self.say("      dev%d provisioned: ID %s" % (dev.index, id_hex))
            return id_hex

        self.display.show_bars()
        workers = min(8, len(self.devices))
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, self.devices))
        for dev, id_hex in zip(self.devices, results):
            self.run.register(dev.index, id_hex)
        self._drain(0.0)

    def _run_devices(self, micropython: str) -> None:
        assert self.sup is not None
        for dev in self.devices:
            dv.start_firmware(self.sup, dev, micropython)
        deadline = time.monotonic() + self.timeout
        while True:
            self._drain(0.05)
            for svc in self.services:
                if not svc.proc.alive():
                    raise UserError(f"the {svc.what} stopped while the devices ran: "
                                    f"{svc.proc.last_error() or 'no error message'}")
            for dev in self.devices:
                run = self.run.devices[dev.index]
                if run.failed:
                    raise UserError(self._failure(dev, run))
            self._next_wakes(micropython)
            running = [d for d in self.devices if d.proc is not None and d.proc.alive()]
            if not running:
                break
            if time.monotonic() > deadline:
                unconfirmed = [d for d in running if not self.run.devices[d.index].confirmed]
                if not unconfirmed:
                    break               # handshakes done; a slow last record is not fatal
                dev = unconfirmed[0]
                run = self.run.devices[dev.index]
                last = run.steps[-1] if run.steps else "no output"
                raise UserError("%s (ID %s): no confirmed handshake within %.0f s (last step: "
                                "%s): raise --timeout or lower --loss"
                                % (dev.label, dev.id_hex, self.timeout, last))
        self._drain(SETTLE_S)
        for dev in self.devices:
            run = self.run.devices[dev.index]
            if not run.confirmed:
                raise UserError(self._failure(dev, run))
        self._later_handshake(micropython, deadline)

    def _next_wakes(self, micropython: str) -> None:
        """A device whose wake ended well (its process exited 0 after a confirmed
        handshake) and has wakes to go is started again, as a board wakes from deep
        sleep."""
        assert self.sup is not None
        for dev in self.devices:
            proc = dev.proc
            if proc is None or proc.alive() or dev.boots >= dv.CYCLES \
                    or proc.popen.returncode != 0:
                continue
            for t in proc.threads:          # its last lines, before deciding on them
                t.join(2)
            self._drain(0.0)
            if self.run.devices[dev.index].confirmed:
                dv.start_firmware(self.sup, dev, micropython)

    def _later_handshake(self, micropython: str, deadline: float) -> None:
        """Device 1 once more with its saved session removed: a later handshake, C_B by
        reference (cached at first contact), so the summary's by-reference figures are
        what went on the air. Not fatal: without it the summary leaves them out."""
        assert self.sup is not None
        dev = self.devices[0]
        if time.monotonic() > deadline:
            return
        self.say("      dev1: the demo removes its saved session, so wake 3 is a later "
                 "handshake (C_B by reference)")
        dv.forget_session(dev)
        proc = dv.start_firmware(self.sup, dev, micropython)
        while proc.alive() and time.monotonic() < deadline:
            self._drain(0.05)
        if proc.alive():
            self.sup.stop(proc)
            self.say("      dev1: wake 3 did not end within --timeout; its figures are left "
                     "out")
        self._drain(SETTLE_S)

    def _failure(self, dev: dv.Device, run: DeviceRun) -> str:
        if run.rejected:
            why = "rejected by B (%s)" % run.rejected
        elif run.failed:
            why = "handshake failed: %s" % run.failed
        elif run.error:
            why = "the firmware stopped: %s" % run.error
        else:
            why = "the firmware ended without a confirmed handshake (last step: %s)" % (
                run.steps[-1] if run.steps else "no output")
        return "%s (ID %s): %s" % (dev.label, dev.id_hex, why)

    def _drain(self, settle: float) -> None:
        """Feed everything queued to the monitor; with settle > 0, wait that long for
        more."""
        end = time.monotonic() + settle
        while True:
            timeout = max(0.0, end - time.monotonic())
            try:
                name, stream, item = self.queue.get(timeout=timeout) if timeout else \
                    self.queue.get_nowait()
            except queue.Empty:
                return
            if name == "probe":
                self.run.arrival(item)
            else:
                self.run.feed(name, stream, item)

    def close(self) -> None:
        self.probe.close()
        if self.sup is not None:
            self.sup.stop_all()
        if self.lorawan is not None:
            self.lorawan.close()
        if self.gateway is not None:
            self.gateway.close()
        self.display.close()


def run_demo(opts: Options, out: TextIO | None = None) -> int:
    """Run the demo; 0 on success. Raises UserError (one line) on any failure, after
    stopping every process."""
    validate(opts)
    out = out if out is not None else sys.stdout
    temp = opts.workdir is None
    work = Path(tempfile.mkdtemp(prefix="airshake-demo-")) if temp else Path(opts.workdir or ".")
    if not temp:
        work = work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            raise UserError(f"--workdir {work} is not empty: pass a new or empty directory")
    out_dir = (opts.out or (work if not temp else Path("demo-out"))).resolve()
    _clear_previous(out_dir, out)
    demo = Demo(opts, out)
    closing = threading.Event()
    with _signals_as_interrupt(closing):
        try:
            demo.execute(work, out_dir)
        finally:
            closing.set()
            demo.close()
            if temp and not opts.keep:
                shutil.rmtree(work, ignore_errors=True)
            elif temp:
                out.write("work dir kept: %s\n" % work)
    return 0


def _clear_previous(out_dir: Path, out: TextIO) -> None:
    """An earlier run's picture and numbers go before this run starts, and the user is
    told: a failed run must not leave them looking like its own."""
    old = [out_dir / name for name in OUT_FILES if (out_dir / name).is_file()]
    for path in old:
        path.unlink()
    if old:
        out.write("removed the previous run's %s\n" % " and ".join(str(p) for p in old))
