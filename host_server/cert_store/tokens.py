# host_server.cert_store.tokens: the certificate store's two bearer tokens (docs/CS_API.md
# "Authentication"). The admin token enrolls and revokes; the reader token (B's
# credential) reads certificates, IDs and revocations; the admin token reads too. A CS
# with no token configured makes each one at first start (secrets.token_urlsafe(32)),
# writes it mode 0600 as admin.token / reader.token in its state directory and reuses
# it later. Also: where the client tools find a token. Tokens are never logged.
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from host_server.errors import UserError

ADMIN = "admin"
READER = "reader"
ADMIN_FILE = "admin.token"
READER_FILE = "reader.token"
ADMIN_ENV = "AIRSHAKE_ADMIN_TOKEN"
READER_ENV = "AIRSHAKE_READER_TOKEN"
B_TOKEN_ENV = "AIRSHAKE_CS_TOKEN"   # B's reader token (airshake server)
MIN_LEN = 16


def default_state_dir(db: str) -> Path:
    """The directory of a SQLite db (path or sqlite:///path); the current directory
    for a postgresql:// or ldap:// store."""
    text = str(db)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    elif "://" in text:
        return Path(".")
    return Path(text).parent


def check(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_LEN or any(c.isspace() for c in token):
        raise UserError(f"the token from {where} is too short or holds spaces: use at "
                        f"least {MIN_LEN} characters, e.g. the ones the CS makes itself")
    return token


def read_file(path: Path, what: str = "token file") -> str:
    try:
        return check(path.read_text(), str(path))
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist: check the path")
    except OSError as e:
        raise UserError(f"cannot read {what} {path} ({e.strerror}): check its permissions")


def load_or_make(state_dir: Path, name: str) -> tuple[str, bool]:
    """(the token in state_dir/name, True if made now). Made with mode 0600 if absent."""
    path = state_dir / name
    if path.exists():
        return read_file(path), False
    token = secrets.token_urlsafe(32)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:   # another CS made it at the same moment: use that one
        return read_file(path), False
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}): choose a writable --state-dir")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token, True


def role_of(header: str, admin: str, reader: str) -> str | None:
    """ADMIN, READER or None for an Authorization header (constant-time compares)."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    raw = given.strip().encode()
    is_admin = hmac.compare_digest(raw, admin.encode())
    is_reader = hmac.compare_digest(raw, reader.encode())
    return ADMIN if is_admin else READER if is_reader else None


def client_token(flag: str | None, state_dir: str | None, admin: bool) -> str:
    """The token a client command sends: --admin-token, then $AIRSHAKE_ADMIN_TOKEN, then
    STATE_DIR/admin.token (and, for reading commands, STATE_DIR/reader.token and
    $AIRSHAKE_CS_TOKEN). One UserError line naming where to get it if none is found."""
    if flag:
        return check(flag, "--admin-token")
    if os.environ.get(ADMIN_ENV):
        return check(os.environ[ADMIN_ENV], "$" + ADMIN_ENV)
    d = Path(state_dir or ".")
    files = [ADMIN_FILE] if admin else [ADMIN_FILE, READER_FILE]
    for name in files:
        if (d / name).exists():
            return read_file(d / name)
    if not admin and os.environ.get(B_TOKEN_ENV):
        return check(os.environ[B_TOKEN_ENV], "$" + B_TOKEN_ENV)
    raise UserError(f"no CS {'admin' if admin else 'admin or reader'} token: pass "
                    f"--state-dir DIR (the CS wrote DIR/{files[0]} at first start), "
                    f"--admin-token, or set ${ADMIN_ENV}")
