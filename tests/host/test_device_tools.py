"""`airshake device ...` for real, without hardware: the MicroPython unix binary behind a
pty made in Python (host_server.device.simpty, what `airshake device sim` uses) stands
in for the board (its working directory is the device's filesystem),
mpremote talks to it exactly as to an ESP32, and the certificate store is a real
`airshake cs serve` with a CA made by `airshake ca init`.

Unix-port quirks these tests rely on (see host_server/device/README.md):
- mpremote must `resume` (no soft reset on connect): a soft reset ends the unix binary.
- its raw pty has no ISIG, so Ctrl-C cannot interrupt running code: `monitor --run` is
  only tried where main.py returns at once (no key yet).
- `mip install` would default to ~/.micropython/lib: deploy passes `--target lib`.
"""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from testkit.cs_support import ADMIN_TOKEN, CS_ENV, READER_HEADERS, TOKEN_ENVS, free_port
from testkit.cs_support import assert_one_line_error as one_line_error
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from host_server.device.simpty import PtyPort

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AIRSHAKE = BIN / "airshake"
MICROPYTHON = BIN / "micropython"
SERVER_NAME = "b.devtools.test"      # the device's pin of B (config server_name)

pytestmark = pytest.mark.skipif(not MICROPYTHON.exists(),
                                reason="needs the MicroPython unix binary")


def run(*args, timeout=120, env=None):
    clean = {k: v for k, v in os.environ.items()
             if k not in (*TOKEN_ENVS, "AIRSHAKE_CS_URL", "AIRSHAKE_WIFI_PASSWORD")}
    clean.update(env or {})
    return subprocess.run([str(AIRSHAKE), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=clean, stdin=subprocess.DEVNULL)


def provision(*args, env=None, **kw):
    """`airshake device provision --server-name SERVER_NAME ARGS` with the test CS's admin
    token in the environment unless env says otherwise."""
    return run("device", "provision", "--server-name", SERVER_NAME, *args,
               env={"AIRSHAKE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}, **kw)


class Pty(PtyPort):
    """`command` run in `cwd` behind a pty made in Python, reachable at `link`. Output
    nobody has read yet is kept for the next program that opens the port."""

    def __init__(self, link: Path, command: str, cwd: Path):
        super().__init__([command], cwd=cwd, link=link, keep_unheard=True)


class Device:
    """The unix port on a pty; root is its filesystem."""

    def __init__(self, base: Path, name: str):
        self.root = base / (name + "-fs")
        self.root.mkdir()
        self.pty = Pty(base / name, str(MICROPYTHON), self.root)
        self.port = str(self.pty.link)

    def file(self, rel: str) -> Path:
        return self.root / rel


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("devtools")


@pytest.fixture(scope="module")
def device(base):
    dev = Device(base, "dev")
    yield dev
    dev.pty.close()


@pytest.fixture(scope="module")
def ca_dir(base):
    out = run("ca", "init", "--dir", base / "ca")
    assert out.returncode == 0, out.stderr
    return base / "ca"


class CS:
    """`airshake cs serve` on a free loopback port, with its own database and the test
    tokens (cs_support.CS_ENV), or the admin token given."""

    def __init__(self, base: Path, ca_dir: Path, name: str, token: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(base / (name + ".stderr"), "w")
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_ENVS}
        env.update(CS_ENV)
        if token:
            env["AIRSHAKE_ADMIN_TOKEN"] = token
        self.proc = subprocess.Popen(
            [str(AIRSHAKE), "cs", "serve", "--ca-dir", str(ca_dir), "--db",
             str(base / (name + ".db")), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=base, env=env)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, (base / (name + ".stderr")).read_text()
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "cs serve did not come up"
            time.sleep(0.05)

    def __enter__(self):
        return self.url

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def cs(base, ca_dir):
    with CS(base, ca_dir, "cs") as url:
        yield url


def start(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("AIRSHAKE_CS_URL",)}
    return subprocess.Popen([str(AIRSHAKE), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def deploys(base, device):
    """Both deploys at once (each is bound by its own pty): .py to `device`, .mpy to
    a second unix-port device."""
    compiled = Device(base, "dev-mpy")
    started, wall_start = time.monotonic(), time.time()
    expected = firmware_files()  # as the deploy sees it (the checkout may grow meanwhile)
    plain = start("device", "deploy", "--port", device.port, "--board", "unix", "--skip-mip")
    mpy = start("device", "deploy", "--port", compiled.port, "--board", "unix", "--skip-mip",
                "--compile")
    results = {}
    for name, proc in (("py", plain), ("mpy", mpy)):
        stdout, stderr = proc.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    results["seconds"] = time.monotonic() - started
    results["wall_start"] = wall_start
    results["expected"] = expected
    results["mpy_device"] = compiled
    yield results
    compiled.pty.close()


@pytest.fixture(scope="module")
def deployed(deploys):
    out = deploys["py"]
    assert out.returncode == 0, out.stdout + out.stderr
    return out, deploys["seconds"], deploys["wall_start"], deploys["expected"]


def firmware_files():
    files = {}
    for path in (ROOT / "firmware").rglob("*"):
        rel = path.relative_to(ROOT / "firmware")
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".md":
            files[rel.as_posix()] = path
    files["board.py"] = ROOT / "boards" / "unix.py"
    return files


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- deploy ----------------------------------------------------------------------------


def test_deploy_puts_every_firmware_file_and_the_board_file(device, deployed):
    out, seconds, wall_start, expected = deployed
    for rel, src in expected.items():
        dst = device.file(rel)
        assert dst.is_file(), rel
        if src.stat().st_mtime < wall_start - 1:  # not edited in the checkout meanwhile
            assert sha(dst) == sha(src), rel
    assert "[1/%d]" % len(expected) in out.stdout           # progress per file
    assert "[%d/%d]" % (len(expected), len(expected)) in out.stdout
    assert "deployed to %s: %d files sent" % (device.port, len(expected)) in out.stdout
    assert not device.file("package.json").exists()         # the manifest stays on the host
    print("deploy of %d files: %.1f s" % (len(expected), seconds))


def test_deploy_again_sends_only_what_changed(device, deployed):
    device.file("lib/device/sensor.py").write_text("# stale\n")
    out = run("device", "deploy", "--port", device.port, "--board", "unix", "--skip-mip")
    assert out.returncode == 0, out.stderr
    sent = re.search(r"(\d+) files sent .* (\d+) unchanged", out.stdout)
    assert sent and 1 <= int(sent.group(1)) < int(sent.group(2)), out.stdout
    assert "] lib/device/sensor.py (" in out.stdout
    assert sha(device.file("lib/device/sensor.py")) == sha(ROOT / "firmware/lib/device/sensor.py")


def test_monitor_run_shows_the_firmware_log(device, deployed):
    # before provisioning, main.py logs that there is no key and returns at once
    out = run("device", "monitor", "--port", device.port, "--run", "--cycles", "1",
              "--duration", "20")
    assert out.returncode == 0, out.stderr
    assert "airshake: stop no device key" in out.stdout


def test_monitor_follows_the_console_without_touching_it(base):
    # a "board" whose console prints two log lines, then stays quiet
    script = base / "console.sh"
    script.write_text("#!/bin/sh\nsleep 0.5\necho 'airshake: wake n=1 board=x'\n"
                      "echo 'airshake: sleep deep 60s'\nsleep 30\n")
    script.chmod(0o755)
    console = Pty(base / "console-tty", str(script), base)
    try:
        out = run("device", "monitor", "--port", console.link, "--duration", "3")
    finally:
        console.close()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d airshake: wake n=1 board=x", lines[0]), lines
    assert lines[1].endswith("airshake: sleep deep 60s")


def test_deploy_compiled(deploys):
    out, dev = deploys["mpy"], deploys["mpy_device"]
    assert out.returncode == 0, out.stdout + out.stderr
    assert dev.file("main.py").is_file() and dev.file("boot.py").is_file()
    assert dev.file("lib/airshake/x509.mpy").is_file()
    assert not dev.file("lib/airshake/x509.py").exists()
    assert dev.file("board.mpy").read_bytes()[:2] == b"M\x06"
    # the compiled tree runs: the device derives its ID from a key it makes
    probe = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", dev.port, "resume", "exec",
         "import sys; sys.path.append('lib'); from device import keystore; "
         "keystore.generate(0); print('ID', keystore.device_id(8))"],
        capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and "ID " in probe.stdout, probe.stdout + probe.stderr


def test_deploy_stage_writes_an_offline_package_json(base):
    stage = base / "stage"
    out = run("device", "deploy", "--board", "ttgo_lora32_v1", "--stage", stage)
    assert out.returncode == 0, out.stderr
    package = json.loads((stage / "files" / "package.json").read_text())
    assert package["version"]
    urls = dict(package["urls"])
    assert urls["airshake/x509.py"] == "lib/airshake/x509.py"
    assert urls["device/keystore.py"] == "lib/device/keystore.py"
    for dest, src in package["urls"]:
        assert (stage / "files" / src).is_file(), src
    assert sha(stage / "files" / "board.py") == sha(ROOT / "boards/ttgo_lora32_v1.py")


# -- provision -------------------------------------------------------------------------


def _key_secrets(device) -> list[str]:
    scalar = device.file("airshake-data/key.bin").read_bytes()[1:]
    return [scalar.hex(), scalar.hex().upper(), base64.b64encode(scalar).decode(),
            repr(scalar)[2:-1]]


def _device_id(stdout: str) -> str:
    line = [ln for ln in stdout.splitlines() if ln.startswith("device ID ")][-1]
    return line.split()[2]


def test_provision_generates_enrolls_and_configures(device, deployed, cs, ca_dir):
    out = provision("--port", device.port, "--cs-url", cs,
              "--ca-cert", ca_dir / "ca.crt", "--server", "127.0.0.1:9471", "--interval", "30")
    assert out.returncode == 0, out.stdout + out.stderr
    ident = _device_id(out.stdout)
    assert "new key, enrolled" in out.stdout
    for rel in ("airshake-data/key.bin", "airshake-data/config.json", "airshake-data/anchor.der"):
        assert device.file(rel).is_file(), rel
    assert device.file("airshake-data/anchor.der").read_bytes() == (ca_dir / "ca.der").read_bytes()
    config = json.loads(device.file("airshake-data/config.json").read_text())
    assert config["server"] == {"host": "127.0.0.1", "port": 9471}
    assert config["suite"] == 0 and config["id_len"] == 8 and config["interval_s"] == 30
    assert config["server_name"] == SERVER_NAME
    # the console is locked from the device's next reset (device.lock)
    assert config["console"] == "locked"
    assert "console locked from the next reset" in out.stdout
    # the store holds C_A for the printed ID, for the device's own public key
    got = httpx.get(f"{cs}/certs/{ident}", timeout=10, headers=READER_HEADERS)
    assert got.status_code == 200
    scalar = device.file("airshake-data/key.bin").read_bytes()[1:]
    public = x25519.X25519PrivateKey.from_private_bytes(scalar).public_key()
    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    cert = x509.load_der_x509_certificate(got.content)
    assert cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == spki
    assert hashlib.sha256(spki).hexdigest()[:16] == ident
    for secret in _key_secrets(device):
        assert secret not in out.stdout + out.stderr


def test_provision_again_keeps_the_key_and_merges_the_config(device, deployed, cs, ca_dir):
    before = device.file("airshake-data/key.bin").read_bytes()
    config = json.loads(device.file("airshake-data/config.json").read_text())
    config["mtu"] = 51                                  # a setting provision does not know
    device.file("airshake-data/config.json").write_text(json.dumps(config))
    out = provision("--port", device.port, "--cs-url", cs,
              "--ca-cert", ca_dir / "ca.der")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "already enrolled" in out.stdout and "existing key" in out.stdout
    assert device.file("airshake-data/key.bin").read_bytes() == before
    first_id = _device_id(out.stdout)
    assert httpx.get(f"{cs}/certs/{first_id}", timeout=10,
                     headers=READER_HEADERS).status_code == 200
    merged = json.loads(device.file("airshake-data/config.json").read_text())
    assert merged["mtu"] == 51 and merged["interval_s"] == 30
    assert merged["server"] == {"host": "127.0.0.1", "port": 9471}
    for secret in _key_secrets(device):
        assert secret not in out.stdout + out.stderr


def test_provision_keeping_the_repl_leaves_the_console_open(device, deployed, cs, ca_dir):
    """`provision --keep-repl` (development): console "repl"; provisioning again without it
    locks the console again."""
    out = provision("--port", device.port, "--cs-url", cs, "--ca-cert", ca_dir / "ca.der",
                    "--keep-repl")
    assert out.returncode == 0, out.stdout + out.stderr
    config = json.loads(device.file("airshake-data/config.json").read_text())
    assert config["console"] == "repl" and "REPL kept on (--keep-repl)" in out.stdout
    out = provision("--port", device.port, "--cs-url", cs, "--ca-cert", ca_dir / "ca.der")
    assert out.returncode == 0, out.stdout + out.stderr
    config = json.loads(device.file("airshake-data/config.json").read_text())
    assert config["console"] == "locked"


def test_monitor_status_shows_settings_not_the_key(device, deployed, cs, ca_dir):
    path = device.file("airshake-data/config.json")
    saved = path.read_text()
    appkey = "2B7E151628AED2A6ABF7158809CF4F3C"
    path.write_text(json.dumps(dict(json.loads(saved), lorawan={
        "deveui": "70B3D57ED0000001", "appeui": "0000000000000001", "appkey": appkey})))
    try:
        out = run("device", "monitor", "--port", device.port, "--status")
    finally:
        path.write_text(saved)
    assert out.returncode == 0, out.stderr
    assert "airshake-data/key.bin: 33 bytes" in out.stdout
    assert '"mtu": 51' in out.stdout
    for secret in _key_secrets(device):
        assert secret not in out.stdout
    assert appkey not in out.stdout and '"appkey": "<hidden>"' in out.stdout
    assert '"deveui": "70B3D57ED0000001"' in out.stdout


def test_provision_other_suite_needs_new_key(device, deployed, cs, ca_dir):
    out = provision("--port", device.port, "--cs-url", cs,
              "--ca-cert", ca_dir / "ca.der", "--suite", "2")
    one_line_error(out, "holds a suite 0 key", "--new-key")


def test_provision_new_key_is_a_new_enrolled_id(device, deployed, cs, ca_dir):
    old_key = device.file("airshake-data/key.bin").read_bytes()
    out = provision("--port", device.port, "--cs-url", cs,
              "--ca-cert", ca_dir / "ca.der", "--suite", "2", "--new-key")
    assert out.returncode == 0, out.stdout + out.stderr
    assert device.file("airshake-data/key.bin").read_bytes() != old_key
    assert device.file("airshake-data/key.bin").read_bytes()[0] == 2
    new_id = _device_id(out.stdout)
    assert "new key, enrolled" in out.stdout
    assert httpx.get(f"{cs}/certs/{new_id}", timeout=10, headers=READER_HEADERS).status_code == 200
    assert json.loads(device.file("airshake-data/config.json").read_text())["suite"] == 2


def test_provision_with_an_admin_token(device, deployed, base, ca_dir):
    token = "s3cret-token-0123456789"
    empty, state = base / "no-token-here", base / "cs-state"
    empty.mkdir()
    state.mkdir()
    (state / "admin.token").write_text(token + "\n")
    with CS(base, ca_dir, "cs-token", token=token) as url:
        out = provision("--port", device.port, "--cs-url", url, "--ca-cert", ca_dir / "ca.der",
                        "--state-dir", empty, env={"AIRSHAKE_ADMIN_TOKEN": ""})
        one_line_error(out, "no CS admin token", "--state-dir", "--admin-token")
        out = provision("--port", device.port, "--cs-url", url, "--ca-cert", ca_dir / "ca.der",
                        "--admin-token", "w" * 30, env={"AIRSHAKE_ADMIN_TOKEN": ""})
        one_line_error(out, "refused the admin token", "--state-dir")
        out = provision("--port", device.port, "--cs-url", url, "--ca-cert", ca_dir / "ca.der",
                        "--state-dir", state, env={"AIRSHAKE_ADMIN_TOKEN": ""})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "enrolled" in out.stdout and token not in out.stdout + out.stderr
        assert httpx.get(f"{url}/certs/{_device_id(out.stdout)}", timeout=10,
                         headers=READER_HEADERS).status_code == 200


def test_provision_without_server_name_fails_with_one_line(device, deployed, cs, ca_dir):
    before = device.file("airshake-data/config.json").read_bytes()
    out = run("device", "provision", "--port", device.port, "--cs-url", cs,
              "--ca-cert", ca_dir / "ca.der", env={"AIRSHAKE_ADMIN_TOKEN": ADMIN_TOKEN})
    one_line_error(out, "--server-name", "airshake ca issue-server")
    assert device.file("airshake-data/config.json").read_bytes() == before
    out = provision("--port", device.port, "--cs-url", cs, "--ca-cert", ca_dir / "ca.der",
                    "--server-name", "bad\tname")
    one_line_error(out, "not a certificate name")
    helptext = run("device", "provision", "--help").stdout
    assert "--server-name" in helptext and "required" in helptext


# -- errors: one line, non-zero, no hang ------------------------------------------------


def test_wrong_port_is_one_line(base, cs, ca_dir):
    missing = base / "no-such-tty"
    one_line_error(run("device", "deploy", "--port", missing, "--board", "unix"),
                   f"no device at {missing}", "airshake device ports")
    one_line_error(provision("--port", missing, "--cs-url", cs,
                       "--ca-cert", ca_dir / "ca.der"), f"no device at {missing}")
    one_line_error(run("device", "monitor", "--port", missing), f"no device at {missing}")


def test_cs_unreachable_is_one_line_and_leaves_the_device_alone(device, deployed, ca_dir):
    before = device.file("airshake-data/key.bin").read_bytes()
    dead = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(provision("--port", device.port, "--cs-url", dead,
                              "--ca-cert", ca_dir / "ca.der", "--new-key"),
                          "cannot reach the certificate store", dead)
    assert "airshake cs serve" in line
    assert device.file("airshake-data/key.bin").read_bytes() == before


def test_bad_ca_cert_is_one_line(device, cs, base):
    bogus = base / "not-a-cert.der"
    bogus.write_bytes(b"\x30\x03\x02\x01\x00")
    one_line_error(provision("--port", device.port, "--cs-url", cs,
                       "--ca-cert", bogus), "is not an X.509 certificate")


def test_provision_before_deploy_says_so(base, cs, ca_dir):
    bare = Device(base, "bare")
    try:
        out = provision("--port", bare.port, "--cs-url", cs,
                  "--ca-cert", ca_dir / "ca.der")
        one_line_error(out, "has no airshake firmware", "airshake device deploy")
        assert not bare.file("airshake-data").exists()
    finally:
        bare.pty.close()


def test_not_a_micropython_device_times_out_with_one_line(base, timing):
    """It gives up by itself (run()'s 120 s would catch a hang); the soak variant bounds
    it at 20 s for --timeout 3."""
    echo = Pty(base / "echo-tty", "/bin/cat", base)
    try:
        timing.start()
        out = run("device", "deploy", "--port", echo.link, "--board", "unix", "--timeout", "3")
        one_line_error(out, "did not answer within 3 s")
        timing.within(20, "deploy --timeout 3 giving up")
    finally:
        echo.close()


def fake_image(path: Path, chip_id: int = 0) -> Path:
    data = bytearray(70000)
    data[0], data[1] = 0xE9, 3
    data[12:14] = chip_id.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def test_flash_checks_the_image_first(base):
    missing = base / "nothing.bin"
    one_line_error(run("device", "flash", "--port", "/dev/null", "--chip", "esp32",
                       "--image", missing), f"firmware image {missing} does not exist")
    text = base / "firmware.uf2"
    text.write_bytes(b"UF2\n" * 20000)
    one_line_error(run("device", "flash", "--port", "/dev/null", "--chip", "esp32",
                       "--image", text), "not a .bin")
    s3 = fake_image(base / "s3.bin", chip_id=9)
    one_line_error(run("device", "flash", "--port", "/dev/null", "--chip", "esp32",
                       "--image", s3), "built for esp32s3")
    one_line_error(run("device", "flash", "--port", "/dev/null", "--board", "unix",
                       "--image", s3), "unix port")


def test_flash_against_something_that_is_not_an_esp32(base, timing):
    """esptool gives up by itself (run()'s 120 s would catch a hang); the soak variant
    bounds it at 60 s."""
    image = fake_image(base / "esp32.bin")
    echo = Pty(base / "flash-tty", "/bin/cat", base)
    try:
        timing.start()
        out = run("device", "flash", "--port", echo.link, "--chip", "esp32", "--image", image,
                  "--timeout", "60")
        line = one_line_error(out, "esptool found no esp32 bootloader", str(echo.link))
        assert "Failed to connect" in line
        assert "[1/2] erasing" in out.stdout
        timing.within(60, "flash giving up on a non-esp32")
    finally:
        echo.close()


# -- in-process: port choice, packages per board, --help --------------------------------


def test_port_choice(monkeypatch):
    from host_server.device import ports
    from host_server.errors import UserError
    usb = ports.Port("/dev/ttyUSB0", "CP2102", 0x10C4, 0xEA60, "0001")
    acm = ports.Port("/dev/ttyACM0", "USB JTAG", 0x303A, 0x1001, None)
    serial0 = ports.Port("/dev/ttyS0", "n/a", None, None, None)
    monkeypatch.setattr(ports, "list_all", lambda: [serial0])
    with pytest.raises(UserError, match="no device found: plug in the board or pass --port"):
        ports.resolve(None)
    monkeypatch.setattr(ports, "list_all", lambda: [serial0, usb])
    assert ports.resolve(None) == "/dev/ttyUSB0"
    monkeypatch.setattr(ports, "list_all", lambda: [usb, acm])
    with pytest.raises(UserError, match="2 boards found"):
        ports.resolve(None)


def test_micropython_lib_packages_per_board():
    from host_server.device import deploy, layout
    want = {"ttgo_lora32_v1": ["lora-sx127x", "lora-async"],
            "heltec_wifi_lora32_v3": ["lora-sx126x", "lora-async"],
            "esp32_rak3172": [], "lilygo_t_sim7000g": [], "unix": []}
    for board, packages in want.items():
        assert deploy.mip_packages(layout.read_board(ROOT, board)) == packages, board


def test_every_device_command_has_help(capsys):
    from host_server.cli import build_parser
    parser = build_parser()
    for cmd in ("ports", "flash", "deploy", "provision", "monitor", "sim"):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(["device", cmd, "--help"])
        assert e.value.code == 0
        assert "--port" in capsys.readouterr().out or cmd == "ports"


# -- airshake device sim ---------------------------------------------------------------


class Sim:
    """`airshake device sim --dir DIR` in the background; port: what it printed."""

    def __init__(self, flash: Path):
        self.proc = subprocess.Popen([str(AIRSHAKE), "device", "sim", "--dir", str(flash)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
        self.lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line, "sim exited: " + "".join(self.lines) + self.proc.stderr.read()
            self.lines.append(line)
            found = re.fullmatch(r"board on (\S+): use --port (\S+)\n", line)
            if found:
                assert found.group(1) == found.group(2)
                self.port = found.group(1)
                return

    def stop(self) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        return code, time.monotonic() - start


def _children_in(flash: Path) -> list[int]:
    """Processes whose working directory is flash (the unix port the sim ran)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(flash.resolve()):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_sim_is_a_board_with_this_checkouts_firmware_until_sigterm(base):
    flash = base / "sim-flash"
    sim = Sim(flash)
    try:
        assert "the firmware of this checkout for board unix" in sim.lines[0], sim.lines
        assert Path(sim.port).exists() and os.path.realpath(sim.port).startswith("/dev/pts/")
        for rel, src in firmware_files().items():
            assert sha(flash / rel) == sha(src), rel
        out = run("device", "monitor", "--port", sim.port, "--status")
        assert out.returncode == 0, out.stderr
        assert "airshake-data/key.bin: missing" in out.stdout
        # monitor without flags on the sim runs main.py: here it says there is no key
        out = run("device", "monitor", "--port", sim.port, "--duration", "20")
        assert out.returncode == 0, out.stderr
        assert "airshake: stop no device key" in out.stdout
        assert _children_in(flash)
    finally:
        code, seconds = sim.stop()
    assert code == 0 and seconds < 5, (code, seconds)
    assert not Path(sim.port).exists() or not _children_in(flash)
    assert not _children_in(flash)
    # started again: the flash is kept as it is (a board's flash)
    (flash / "airshake-data").mkdir(exist_ok=True)
    (flash / "airshake-data" / "state.json").write_text('{"wakes": 7}')
    sim = Sim(flash)
    try:
        assert "kept as it is" in sim.lines[0], sim.lines
        assert (flash / "airshake-data" / "state.json").read_text() == '{"wakes": 7}'
    finally:
        sim.stop()


def test_sim_restarts_the_unix_port_behind_the_same_port_when_it_exits(base):
    sim = Sim(base / "sim-reset")
    try:
        first = _children_in(base / "sim-reset")
        # SystemExit ends the unix port (a board would soft-reset): the sim starts it again
        run_mp = [sys.executable, "-m", "mpremote", "connect", sim.port, "resume", "exec"]
        subprocess.run([*run_mp, "import sys\nsys.exit()"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while _children_in(base / "sim-reset") in ([], first):
            assert time.monotonic() < deadline, "the unix port was not started again"
            time.sleep(0.1)
        out = subprocess.run([*run_mp, "print(6 * 7)"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    finally:
        sim.stop()
    assert any("started again on " + sim.port in ln for ln in sim.lines + [
        sim.proc.stdout.read()])


def test_sim_without_the_micropython_binary_is_one_line(base):
    out = run("device", "sim", "--dir", base / "sim-none", "--micropython",
              base / "nothing" / "micropython", timeout=10)
    one_line_error(out, "does not exist", "make setup")
    assert not (base / "sim-none").exists()


def test_monitor_that_stops_before_main_ends_resets_the_sims_board(base, timing):
    # a firmware that never returns: the unix port cannot be interrupted, so after
    # following for 2 s monitor has the sim reset its board, and the port answers again
    flash = base / "sim-busy"
    sim = Sim(flash)
    try:
        (flash / "main.py").write_text("import time\nprint('airshake: wake n=1')\n"
                                       "while True:\n    time.sleep(0.1)\n")
        out = run("device", "monitor", "--port", sim.port, "--duration", "2")
        assert out.returncode == 0, out.stderr
        assert "airshake: wake n=1" in out.stdout
        assert "the sim at %s reset its board" % sim.port in out.stderr
        timing.start()
        out = run("device", "monitor", "--port", sim.port, "--status", "--timeout", "10")
        assert out.returncode == 0, out.stderr
        timing.within(10, "monitor --status after the reset")     # soak variant only
    finally:
        sim.stop()


@pytest.mark.parametrize("keep", [False, True])
def test_python_pty_drops_what_nobody_reads_unless_asked_to_keep_it(base, keep):
    import serial
    port = PtyPort(["/bin/sh", "-c", "echo early; sleep 1.5; echo late; sleep 30"],
                   cwd=base, keep_unheard=keep)
    try:
        time.sleep(0.8)                  # "early" is written while nobody holds the port
        with serial.Serial(port.port, timeout=0.2) as conn:
            seen = b""
            deadline = time.monotonic() + 5
            while b"late" not in seen and time.monotonic() < deadline:
                seen += conn.read(64)
    finally:
        assert port.close() is not None
    assert b"late" in seen, seen
    assert (b"early" in seen) == keep, seen
    assert not port.alive()
