# host_server.config: TOML configuration files, environment variables and flags: the one
# settings reader of the CLIs. Precedence, for every setting of every command:
#   flag > environment variable (where the setting has one) > config file > default.
# A command reads its section of the file (e.g. [cs], [server]). Every problem becomes
# one UserError line naming the file and the key.
import os
import tomllib
from pathlib import Path
from typing import Any

from host_server.errors import UserError


def load_section(path: str | None, section: str) -> dict[str, Any]:
    """The [section] table of the TOML file at path ({} when path is None)."""
    if path is None:
        return {}
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist: check the --config path") from None
    except PermissionError:
        raise UserError(f"config file {path} is not readable: check its permissions") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {path} is not valid TOML ({e}): fix the syntax") from None
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise UserError(f"config file {path}: [{section}] must be a table")
    return value


def pick(flags: Any, section: dict[str, Any], name: str, default: Any = None,
         kind: type | None = None, env: str | None = None) -> Any:
    """The flag if given, else $env if set and not empty, else the file's value, else
    default; checked against kind."""
    value = getattr(flags, name, None)
    if value is None and env:
        value = os.environ.get(env) or None
    if value is None:
        value = section.get(name, default)
    if kind is not None and value is not None and not isinstance(value, kind):
        raise UserError(f"setting {name!r} must be a {kind.__name__}, not {value!r}")
    return value
