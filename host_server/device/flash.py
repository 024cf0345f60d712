# host_server.device.flash: putting a MicroPython firmware image on an ESP32 with esptool
# (`python -m esptool` subprocesses): check the image fits the chip, erase the flash, write
# the image at the chip's offset. esptool's own progress is shown as it comes; its failure
# becomes one UserError line.
import importlib.metadata
import os
import sys
from collections.abc import Callable
from pathlib import Path

from host_server.errors import UserError
from host_server.device import ports
from host_server.device.watchdog import run_watched

# Where a MicroPython image (bootloader first) goes: after the 4 KiB reserved area on the
# ESP32 and ESP32-S2, at 0 on the newer chips.
OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}

# chip_id field of the ESP image header (byte 12, little endian; ESP32 images often leave 0)
CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9}
IMAGE_MAGIC = 0xE9
MIN_IMAGE = 64 * 1024
MAX_IMAGE = 16 * 1024 * 1024
DEFAULT_BAUD = 460800
DEFAULT_TIMEOUT = 300.0


def normalize_chip(chip: str) -> str:
    name = chip.lower().replace("-", "").replace("_", "")
    if name not in OFFSETS:
        raise UserError(f"unknown chip {chip!r}: choose one of {', '.join(OFFSETS)}")
    return name


def check_image(path: str, chip: str) -> bytes:
    """The image's bytes, after checking it looks like a MicroPython .bin for chip."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"firmware image {path} does not exist: download the {chip} .bin from "
                        "https://micropython.org/download/ and pass its path")
    if p.suffix.lower() != ".bin":
        raise UserError(f"firmware image {path} is not a .bin file: esptool writes raw images "
                        "(the .bin on micropython.org, not .elf, .uf2 or .hex)")
    data = p.read_bytes()
    if not MIN_IMAGE <= len(data) <= MAX_IMAGE:
        raise UserError(f"firmware image {path} is {len(data)} bytes, not the size of a "
                        "MicroPython image: download it again")
    if data[0] != IMAGE_MAGIC:
        raise UserError(f"firmware image {path} does not start with an ESP image header "
                        f"(0x{data[0]:02x}, not 0xe9): it is not an ESP32 firmware .bin")
    image_chip = int.from_bytes(data[12:14], "little")
    by_id = {v: k for k, v in CHIP_IDS.items()}
    if image_chip != CHIP_IDS[chip] and image_chip in by_id and image_chip != 0:
        raise UserError(f"firmware image {path} is built for {by_id[image_chip]}, not {chip}: "
                        f"download the {chip} image or fix --chip")
    return data


def esptool_commands() -> tuple[str, str]:
    """(erase, write) command names: esptool 5 uses dashes, 4.x underscores."""
    try:
        major = int(importlib.metadata.version("esptool").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        major = 5
    return ("erase-flash", "write-flash") if major >= 5 else ("erase_flash", "write_flash")


def esptool_error(output: str) -> str:
    """The line of esptool's output that says what went wrong."""
    lines = [ln.strip() for ln in output.replace("\r", "\n").splitlines() if ln.strip()]
    for marker in ("A fatal error occurred:", "Error:", "error:"):
        for line in reversed(lines):
            if marker in line:
                return line.split(marker, 1)[1].strip() or line
    return lines[-1] if lines else "no output"


def run_esptool(args: list[str], chip: str, what: str, port: str, timeout: float,
                show: Callable[[str], None]) -> None:
    """Run esptool, showing its output as it comes; UserError on failure or timeout."""
    argv = [sys.executable, "-m", "esptool", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        done = run_watched(argv, timeout, env, on_line=show, merge_stderr=True)
    except OSError as e:
        raise UserError(f"cannot run esptool ({e}): install it with `pip install esptool`")
    if done.expired:
        raise UserError(f"{what} on {port} took longer than {timeout:g} s and was stopped: "
                        "check the cable, lower --baud, or raise --timeout")
    if done.returncode != 0:
        text = done.stdout
        reason = esptool_error(text)
        hint = "hold BOOT, press RESET, release BOOT to enter the bootloader, and check --chip"
        if "Failed to connect" in text or "No serial data received" in text:
            raise UserError(f"{what}: esptool found no {chip} bootloader at {port} "
                            f"({reason}): {hint}")
        raise UserError(f"{what} on {port} failed (esptool: {reason}): {hint}")


def flash(port: str, chip: str, image: str, baud: int = DEFAULT_BAUD, erase: bool = True,
          timeout: float = DEFAULT_TIMEOUT, show: Callable[[str], None] = print,
          connect_attempts: int = 3) -> int:
    """Erase the chip (unless erase=False) and write image at the chip's offset; the offset."""
    chip = normalize_chip(chip)
    data = check_image(image, chip)
    if ports.missing(port):
        raise ports.no_device(port)
    offset = OFFSETS[chip]
    erase_cmd, write_cmd = esptool_commands()
    common = ["--chip", chip, "--port", port, "--baud", str(baud),
              "--connect-attempts", str(connect_attempts)]
    if erase:
        show(f"[1/2] erasing the {chip} flash at {port} (this takes up to a minute)")
        run_esptool(common + [erase_cmd], chip, "erasing the flash", port, timeout, show)
    step = "[2/2]" if erase else "[1/1]"
    show(f"{step} writing {Path(image).name} ({len(data)} bytes) at 0x{offset:x}")
    run_esptool(common + [write_cmd, f"0x{offset:x}", image], chip, "writing the image", port,
                timeout, show)
    return offset
