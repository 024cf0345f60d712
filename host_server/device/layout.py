# host_server.device.layout: where the project's device files are on the host: the
# checkout root, firmware/ (the device's filesystem tree) and boards/<name>.py (one data
# module per board, read here without running it).
import ast
from pathlib import Path
from typing import Any

from host_server.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
# the device's data directory, relative to its filesystem root (firmware/lib/device/files.py
# DATA; tests/host/test_device_tools.py checks the two agree)
DATA_DIR = "airshake-data"


def project_root(root: str | None = None) -> Path:
    """The checkout holding firmware/ and boards/ (default: the one these tools came from)."""
    path = Path(root) if root else ROOT
    if not (path / "firmware").is_dir():
        raise UserError(f"no firmware/ directory in {path}: run from an airshake checkout "
                        "or pass --root DIR")
    return path


def board_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "boards").glob("*.py") if not p.stem.startswith("_"))


def board_path(root: Path, name: str) -> Path:
    path = root / "boards" / (name + ".py")
    if not path.is_file():
        known = ", ".join(board_names(root)) or "none yet"
        raise UserError(f"no board file boards/{name}.py: choose one of {known}")
    return path


def read_board(root: Path, name: str) -> dict[str, Any]:
    """The board module's top-level NAME = literal assignments (it is data, never run)."""
    path = board_path(root, name)
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as e:
        raise UserError(f"boards/{name}.py line {e.lineno}: {e.msg}: fix the board file")
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # computed values are the device's business
    return values
