"""`airshake demo` end to end: CA, CS, B, the link emulator and the real firmware on the
MicroPython unix binary (provisioned through mpremote on a pty made in Python), as `make demo`
runs it. Each run gets its own --workdir, so its pids.txt lists every process it started
and any process left behind can be found by its command line or working directory.
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from host_server.lorawan.broker import INSTALL, find_mosquitto
from testkit.cs_support import assert_one_line_error as one_line_error

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = Path(sys.executable).with_name("micropython")

pytestmark = pytest.mark.skipif(not MICROPYTHON.exists(),
                                reason="needs the MicroPython unix binary")


def demo(*args, timeout=120, env=None):
    """`airshake demo ARGS` in a subprocess; (CompletedProcess, wall seconds)."""
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "host_server.cli", "demo", *map(str, args)],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                         env=env, stdin=subprocess.DEVNULL)
    return out, time.monotonic() - start


def leftovers(work: Path) -> list[str]:
    """Processes still running that the run started (pids.txt) or that run in or name its
    work directory (the MicroPython behind its pty, mpremote)."""
    alive = []
    pid_file = work / "pids.txt"
    if pid_file.exists():
        for line in pid_file.read_text().splitlines():
            pid, name = line.split(" ", 1)
            if _running(int(pid)):
                alive.append("%s %s" % (pid, name))
    needle = str(work)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle in cmd or cwd.startswith(needle):
            alive.append("%s %s" % (entry.name, cmd.strip()))
    return alive


def _running(pid: int) -> bool:
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_clean(work: Path, wait: float = 5.0) -> None:
    deadline = time.monotonic() + wait
    while leftovers(work) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(work) == []


def summary(work: Path) -> dict:
    return json.loads((work / "summary.json").read_text())


def svg_ok(path: Path) -> ET.Element:
    tree = ET.parse(path)
    root = tree.getroot()
    assert root.tag.endswith("svg")
    return root


# -- runs that must complete ---------------------------------------------------------------


def test_default_run(tmp_path, timing):
    """`make demo`'s run: lora-sf7, one device, no loss. Every piece is there, every step
    is shown, the summary and the picture are written, and no process is left. The soak
    variant bounds the run at a minute and the first byte at 5 s of wall time."""
    work = tmp_path / "run"
    stale = tmp_path / "out"
    stale.mkdir()
    (stale / "summary.json").write_text("an earlier run's\n")
    out, wall = demo("--workdir", work, "--out", stale)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert text.startswith("removed the previous run's %s\n" % (stale / "summary.json"))
    assert summary(stale)["link"] == "lora-sf7"
    work_out = work
    work = stale                      # summary.json and sequence.svg went to --out
    timing.within(60, "the default demo run", took=wall)
    for needle in ("airshake ca init", "airshake cs serve", "airshake server",
                   "python -m airshake_tools.linkemu --profile lora-sf7",
                   "[1/4] key on the device at",           # provision through mpremote
                   "enrolled: certificate valid until",
                   "A -> B  m1               46 B  ToA    92.4 ms",
                   "B -> CS POST /certs/batch [",          # B fetches C_A by ID
                   "B -> A  m2              241 B",        # C_B by value (C509): 1 frame
                   "wait   28.7 s",                        # B's duty cycle
                   "A -> B  m3", "handshake ok",
                   "saved session: the reading goes out as ONE record",
                   "summary: lora-sf7", "first authenticated application byte",
                   "prior art, Fig. 1", "airshake, C_B by reference",
                   "wake 3, a later handshake: 43 + 41 + "):
        assert needle in text, needle
    s = summary(work)
    d = s["per_device"][0]
    assert s["virtual"] is True and d["confirmed"] and d["replied"]
    assert d["c_b"] == "value" and d["sizes"]["m1"] == 46
    assert d["sizes"]["m2"] <= 255 and d["fragments"] == 0      # one LoRa frame (C509)
    assert d["sizes"]["m3"] >= 9 and d["sizes"]["record"] >= 17
    assert d["b_handshake"]["cache"] == "cs" and d["cs_lookup"]["result"] == "found"
    # every size is what went on the air, and agrees with what the device logged
    assert d["sizes"] == {k: d["sizes_device_log"][k] for k in d["sizes"]}
    # wake 3, a later handshake: C_B by reference and the clock confirmed, so the short
    # m1 (43 B), measured (m2 41 B, B's record 17 B plus its 5-byte reply), and the
    # comparison's rows are those sizes
    later = d["sizes_later_handshake"]
    assert later["m1"] == 43 and later["m2"] == 41 and later["m3"] == d["sizes"]["m3"]
    assert later["first record"] == 17 + 5
    rows = {c["name"]: [b for _, b in c["messages"]] for c in s["comparison"]}
    assert rows["airshake (this run)"] == [d["sizes"][k] for k in ("m1", "m2", "m3")]
    assert rows["airshake, C_B by reference"] == [43, 41, later["m3"]]
    # the run's first byte matches the link model's cost() of the same messages
    first = d["first_byte_modelled_s"]
    model = s["comparison"][0]["first_byte_s"]
    assert abs(first - model) < 2.0, (first, model)   # + real processing in virtual time
    assert d["first_byte_wall_s"] > 0
    timing.within(5, "the first byte (wall)", took=d["first_byte_wall_s"])
    prior = [c for c in s["comparison"] if c["name"].startswith("prior art")][0]
    assert prior["handshake_bytes"] > s["comparison"][0]["handshake_bytes"]
    assert prior["first_byte_s"] > first
    assert s["unnamed_frames"] == 0
    root = svg_ok(work / "sequence.svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "m1 · 46 B" in texts and "first authenticated application byte" in texts
    assert "picture: %s" % (work / "sequence.svg") in text
    pids = (work_out / "pids.txt").read_text().split()
    assert {"cs", "b", "relay", "dev1"} <= set(pids)
    assert_clean(work_out)


def test_lossy_run_completes(tmp_path):
    """20% of frames lost on lora-sf7: a lost m2 fragment is recovered through a
    fragment ack and a resend, and the handshake completes."""
    work = tmp_path / "lossy"
    out, _ = demo("--workdir", work, "--loss", "0.2")
    assert out.returncode == 0, out.stdout + out.stderr
    s = summary(work)
    d = s["per_device"][0]
    assert d["confirmed"]
    assert s["relay"]["lost"] >= 1 and d["frames_lost"] >= 1
    assert "LOST" in out.stdout
    assert d["acks"] >= 1 or d["retransmissions"] >= 1
    svg_ok(work / "sequence.svg")
    assert_clean(work)


def test_lorawan_dr0_lossy_completes_through_fragments(tmp_path):
    """LoRaWAN EU868 DR0 (51-byte frames, class A) with 20% loss: C_B by value on first
    contact (with the server role profile: extendedKeyUsage and authorityKeyIdentifier)
    makes m2 six 51-byte fragments; B sends one at a time (--fragment-resend 1) and A
    pulls the rest with fragment acks, lost ones asked for again. Within the default
    timeout."""
    work = tmp_path / "lorawan"
    out, _ = demo("--workdir", work, "--link", "lorawan-eu868-dr0", "--loss", "0.2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    s = summary(work)
    d = s["per_device"][0]
    assert d["confirmed"] and d["c_b"] == "value"
    assert d["fragments"] >= 6 and d["acks"] >= 1 and d["frames_lost"] >= 1
    assert "m2 1/6           51 B" in out.stdout
    assert_clean(work)


def test_three_devices_at_once(tmp_path, timing):
    """Three devices through one relay and B; the soak variant bounds the run at 60 s."""
    work = tmp_path / "three"
    out, wall = demo("--workdir", work, "--devices", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    s = summary(work)
    ids = {d["id"] for d in s["per_device"]}
    assert len(ids) == 3 and all(d["confirmed"] for d in s["per_device"])
    assert all(d["b_handshake"].get("outcome") == "ok" for d in s["per_device"])
    # one relay peer per device and wake, and device 1's wake 3
    assert s["relay"]["devices"] == 7
    for i in (1, 2, 3):
        assert "dev%d  A -> B  m1" % i in out.stdout
    timing.within(60, "three devices", took=wall)
    assert_clean(work)


def _stamps(text):
    return [float(line.split()[0]) for line in text.splitlines()
            if line.startswith("  ") and line.split()[1:2] == ["s"]
            and line.split()[0].replace(".", "").isdigit()]


def test_three_lorawan_devices_with_loss_all_complete_and_every_reading_is_acked(tmp_path,
                                                                                 timing):
    """`make demo DEMO_ARGS="--link lorawan-eu868-dr0 --loss 0.2 --devices 3"`, seed 3:
    frames are lost in every device's handshake, yet each completes, B stores both of
    its readings (m3 and the wake-2 record) and acknowledges each, and each device sees
    the acknowledgement (seed 3: the first uplink and the first downlink of each wake-2
    relay peer, device3 to device5 in linkemu's fork order, are not lost; with another
    seed a lost acknowledgement is reported as lost on the air). B sends no m2 fragment
    after the device's m3, the printed times never go back, and the default timeout
    (45 s of wall time) holds (the soak variant bounds the whole run at 45 + 30 s)."""
    work = tmp_path / "lorawan3"
    out, wall = demo("--workdir", work, "--link", "lorawan-eu868-dr0", "--loss", "0.2",
                     "--devices", "3", "--seed", "3", timeout=150)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr
    s = summary(work)
    assert s["relay"]["lost"] >= 5
    devices = s["per_device"]
    assert len({d["id"] for d in devices}) == 3
    for d in devices:
        assert d["confirmed"] and d["c_b"] == "value", d
        assert d["fragments"] >= 6 and d["acks"] >= 1, d
        assert d["replied"] and d["reply_frames"] == "delivered", d
    import sqlite3
    with sqlite3.connect(work / "b-records.db") as db:
        stored = db.execute("SELECT id_a, kind FROM records").fetchall()
    for d in devices:                 # device 1's wake 3 is one more handshake
        kinds = [k for i, k in stored if i == d["id"]]
        assert kinds.count("record") == 1, kinds
        assert kinds.count("m3") == (2 if d["device"] == 1 else 1), kinds
    # once B has a device's m3 it sends no more of its m2 (one fragment B sent before
    # may still be on its way); B's reply went at once (it used to queue behind them)
    for i in (1, 2, 3):
        lines = [ln for ln in out.stdout.splitlines() if "dev%d  " % i in ln]
        m3_done = next(n for n, ln in enumerate(lines) if "handshake ok" in ln)
        late = [ln for ln in lines[m3_done:] if re.search(r"B -> A  m2 \d+/\d+", ln)]
        assert len(late) <= 1, late
    stamps = _stamps(out.stdout)
    assert len(stamps) > 60 and stamps == sorted(stamps)
    timing.within(45 + 30, "three LoRaWAN devices at 20% loss", took=wall)
    assert_clean(work)


def test_gateway_run_through_two_simulated_gateways_and_the_bridge(tmp_path):
    """`make demo DEMO_ARGS="--via gateway --devices 2"`: TTGO LoRa32 v1 firmware on the
    link emulator's stand-in lora driver, its frames on the stand-in air heard by two GWMP
    gateway simulators, the bridge (airshake gateway) giving each device its own flow to
    B through the link emulator. Each device completes its wakes (handshake, record,
    device 1's later handshake), the picture and summary are the default demo's, and
    the summary counts what crossed the air, the gateways and the bridge."""
    work = tmp_path / "gateway"
    out, _ = demo("--workdir", work, "--via", "gateway", "--devices", "2", timeout=150)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr
    text = out.stdout
    for needle in ("python -m airshake_tools.linkemu.air", "2 GWMP gateways",
                   "(airshake gateway)", "board ttgo_lora32_v1",
                   "dev1  A -> B  m1               46 B", "dev2  A -> B  m1               46 B",
                   "summary: lora-sf7 via gateway", "raw LoRa through GWMP gateways",
                   "saved session: the reading goes out as ONE record"):
        assert needle in text, needle
    s = summary(work)
    assert s["via"] == "gateway" and s["unnamed_frames"] == 0
    for d in s["per_device"]:
        assert d["confirmed"] and d["replied"] and d["c_b"] == "value", d
        assert d["sizes"]["m1"] == 46 and d["sizes"]["m2"] <= 255 and d["fragments"] == 0
        assert d["sizes"] == {k: d["sizes_device_log"][k] for k in d["sizes"]}
    assert s["per_device"][0]["sizes_later_handshake"]["m1"] == 43     # C_B held
    # the relay saw one flow per device (the bridge keeps it across wakes)
    assert s["relay"]["devices"] == 2
    g = s["gateway"]
    assert len(g["gateways"]) == 2
    near, far = sorted(g["gateways"], key=lambda x: x["eui"])
    # no loss on the air: answers go through the gateway that heard the uplink better
    # (the first); it hears nothing while it transmits, so an uplink overlapping the
    # other device's downlink is heard by the second alone, which then answers it.
    # Device 1: m1, m3, record, m1, m3; device 2: m1, m3, record: all reached B
    assert g["air"]["frames_up"] >= g["bridge"]["uplinks"] >= 5 + 3
    assert near["transmitted"] > far["transmitted"]
    assert near["transmitted"] + far["transmitted"] == g["bridge"]["downlinks"]
    assert g["bridge"]["uplinks"] + g["bridge"]["rx_duplicate"] == \
        near["pushed"] + far["pushed"]
    assert g["air"]["frames_down"] == g["bridge"]["downlinks"]
    svg_ok(work / "sequence.svg")
    assert_clean(work)


def test_gateway_needs_the_boards_data_rate(tmp_path):
    work = tmp_path / "sf12"
    out, _ = demo("--workdir", work, "--via", "gateway", "--link", "lora-sf12")
    one_line_error(out, "--via gateway", "--link lora-sf7")
    assert_clean(work)


def test_default_timeout_is_wall_time_in_virtual_time():
    """The --timeout default (45 s) bounds the devices' run in wall seconds; the link's
    modelled minutes (about 20 for DR0 by value) do not stretch it in virtual time."""
    import io

    from host_server.demo.options import Options
    from host_server.demo.run import DEFAULT_TIMEOUT, Demo
    slow = Demo(Options(link="lorawan-eu868-dr0"), io.StringIO())
    assert slow.timing.virtual and slow.timing.modelled_s > 600
    assert slow.timeout == DEFAULT_TIMEOUT == 45.0
    assert Demo(Options(link="lorawan-eu868-dr0", timeout=7.0), io.StringIO()).timeout == 7.0


# -- errors: one line, non-zero, nothing left running -----------------------------------


def test_busy_ports_are_one_line(tmp_path):
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        busy_tcp, busy_udp = tcp.getsockname()[1], udp.getsockname()[1]
        work = tmp_path / "busy-cs"
        out, _ = demo("--workdir", work, "--cs-port", busy_tcp)
        one_line_error(out, "TCP port %d (--cs-port) is in use" % busy_tcp)
        assert_clean(work)
        work = tmp_path / "busy-b"
        out, _ = demo("--workdir", work, "--b-port", busy_udp)
        one_line_error(out, "UDP port %d (--b-port) is in use" % busy_udp)
        assert_clean(work)


def test_cs_starts_again_when_its_free_port_was_taken(tmp_path, monkeypatch):
    """--cs-port 0: the free port picked is taken by another program before the CS binds
    it; the demo starts the CS on another one instead of failing."""
    from host_server.demo import services
    from host_server.demo.procs import Supervisor
    ca_dir, _ = services.make_pki(tmp_path, 0)
    ready = services.Readiness()
    sup = Supervisor(ready.feed)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, services.free_port()])
        monkeypatch.setattr(services, "free_port", lambda: next(ports))
        try:
            cs = services.start_cs(sup, ready, tmp_path, ca_dir, 0)
            assert cs.port != taken and cs.proc.alive()
        finally:
            sup.stop_all()


def test_missing_binaries_are_one_line(tmp_path):
    work = tmp_path / "no-mp"
    out, _ = demo("--workdir", work, "--micropython", tmp_path / "nothing" / "micropython")
    one_line_error(out, "does not exist", "make setup")
    assert_clean(work)


def test_devices_that_do_not_finish_are_one_line(tmp_path):
    """A handshake that cannot finish in time ends the demo with one line naming the
    device and its last step, and stops everything."""
    work = tmp_path / "slow"
    out, _ = demo("--workdir", work, "--link", "lorawan-eu868-dr0", "--timeout", "3")
    line = one_line_error(out, "dev1 (ID ", "no confirmed handshake within 3 s",
                          "last step: ")
    assert "--timeout" in line
    assert_clean(work)


def test_failed_handshake_is_one_line(tmp_path, monkeypatch, capsys):
    """In-process with a device that gives up fast (1 retry) on a link that loses nearly
    everything: the firmware's `failed` line becomes the demo's one error line."""
    from host_server.demo import run as run_mod
    from host_server.demo.options import Options, Timing
    from host_server.errors import UserError
    monkeypatch.setattr(run_mod, "timing",
                        lambda profile, mode: Timing(True, 0.2, 1, 1.0, 1.0))
    work = tmp_path / "fail"
    with pytest.raises(UserError) as e:
        run_mod.run_demo(Options(loss=0.95, seed=3, workdir=work), out=sys.stdout)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("dev1 (ID ") and "handshake failed: no m2 from B" in message
    assert_clean(work)


def test_sigterm_stops_every_process(tmp_path):
    work = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, "-m", "host_server.cli", "demo", "--workdir",
                             str(work), "--link", "lorawan-eu868-dr0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "A -> B  m1" in line:          # CS, B, relay, pty gone, firmware running
            break
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, "".join(seen) + err
    assert err.strip().splitlines()[-1] == "airshake: interrupted"
    assert_clean(work)


@pytest.mark.parametrize("via", [[], ["--via", "gateway", "--link", "lora-sf7"],
                                 pytest.param(["--via", "chirpstack"], marks=pytest.mark.skipif(
                                     find_mosquitto() is None, reason="the chirpstack demo "
                                     "(needs mosquitto: %s)" % INSTALL))],
                         ids=["default", "gateway", "chirpstack"])
def test_sigkill_of_the_demo_leaves_no_process(tmp_path, via):
    """Killed without a chance to clean up, the demo still takes its processes with it
    (each dies with its parent: PR_SET_PDEATHSIG), the gateway path's included."""
    work = tmp_path / "kill"
    proc = subprocess.Popen([sys.executable, "-m", "host_server.cli", "demo", "--workdir",
                             str(work), *via], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "A -> B  m1" in line:          # every service and the device running
            break
    assert leftovers(work), "".join(seen)     # the check below can see what runs
    proc.kill()
    proc.wait(10)
    try:
        # each process ends on its own SIGTERM (threads joined, counts printed): under
        # make test's load one of the gateway path's took over 5 s twice (never alone)
        assert_clean(work, wait=20.0)
    finally:            # a failure must not leave the demo's processes running
        for entry in leftovers(work):
            with contextlib.suppress(OSError):
                os.kill(int(entry.split(" ", 1)[0]), signal.SIGKILL)


def test_help_explains_the_options():
    out = subprocess.run([sys.executable, "-m", "host_server.cli", "demo", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    for flag in ("--link", "--loss", "--devices", "--suite", "--workdir", "--keep",
                 "lorawan-eu868-dr0", "prior-art", "virtual time", "--via", "gateway",
                 "GWMP"):
        assert flag in out.stdout, flag
