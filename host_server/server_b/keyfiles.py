# host_server.server_b.keyfiles: reads the files server B is configured with: the CA
# certificate (PEM or DER) and B's static keys (PKCS#8 PEM) with their certificates C_B,
# turned into the core's ServerKey objects. Every problem is one UserError line naming
# the file; key material never appears in a message.
from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509 as pyx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from airshake import suites
from airshake.crypto.contract import RsaPrivate
from airshake.errors import AirshakeError, UsageError
from airshake.keys import ServerKey
from host_server.server_b.config import KeySpec, ServerConfig
from host_server.errors import UserError

_KEY_FILE = re.compile(r"^server-suite(\d)\.key$")


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist: {hint}") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory: give the file") from None
    except PermissionError:
        raise UserError(f"{what} {path} is not readable: check its permissions") from None
    except OSError as e:
        raise UserError(f"{what} {path} cannot be read ({e.strerror}): check the path") from None


def load_certificate(path: Path, what: str, hint: str) -> pyx509.Certificate:
    data = _read(path, what, hint)
    try:
        if b"-----BEGIN" in data:
            return pyx509.load_pem_x509_certificate(data)
        return pyx509.load_der_x509_certificate(data)
    except ValueError:
        raise UserError(f"{what} {path} is not an X.509 certificate (PEM or DER): "
                        "give the .crt or .der file") from None


def load_ca(path: Path) -> pyx509.Certificate:
    return load_certificate(path, "CA certificate", "give the ca.crt or ca.der written by "
                            "`airshake ca init` (--ca-cert)")


def _core_private(key: object, suite: int, path: Path) -> object:
    kind = suites.STATIC_KEY_TYPE[suite]
    if kind == "x25519" and isinstance(key, x25519.X25519PrivateKey):
        return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    if (kind == "p256" and isinstance(key, ec.EllipticCurvePrivateKey)
            and isinstance(key.curve, ec.SECP256R1)):
        return key.private_numbers().private_value.to_bytes(32, "big")
    if kind == "rsa" and isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return RsaPrivate(n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q,
                          n.dmp1, n.dmq1, n.iqmp)
    raise UserError(f"server key {path} is not a {kind} key, as suite {suite} needs: "
                    "check the suite number of the key")


def load_server_key(backend: object, spec: KeySpec) -> ServerKey:
    if spec.suite not in suites.NAMES:
        raise UserError(f"suite {spec.suite} of server key {spec.key} is unknown: use 0, 1 or 2")
    hint = "create it with `airshake ca issue-server`"
    data = _read(spec.key, "server key", hint)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UserError(f"server key {spec.key} is not an unencrypted PKCS#8 PEM key: "
                        "give the .key file of `airshake ca issue-server`") from None
    private = _core_private(key, spec.suite, spec.key)
    cert = load_certificate(spec.cert, "server certificate", hint)
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        return ServerKey(backend, spec.suite, private, der)
    except UsageError:
        raise UserError(f"server key {spec.key} does not match the key in {spec.cert}: "
                        "give the certificate issued for this key") from None
    except AirshakeError as e:
        raise UserError(f"server certificate {spec.cert} cannot serve suite {spec.suite} "
                        f"({e}): issue it with --suite {spec.suite}") from None


def specs_in_dir(key_dir: Path) -> list[KeySpec]:
    if not key_dir.is_dir():
        raise UserError(f"key directory {key_dir} does not exist: give the --out directory "
                        "of `airshake ca issue-server` (--key-dir)")
    specs = []
    try:
        names = sorted(p.name for p in key_dir.iterdir())
    except PermissionError:
        raise UserError(f"key directory {key_dir} is not readable: check its permissions") from None
    for name in names:
        m = _KEY_FILE.match(name)
        if not m:
            continue
        suite = int(m.group(1))
        cert = key_dir / f"server-suite{suite}.der"
        if not cert.exists():
            cert = key_dir / f"server-suite{suite}.crt"
        specs.append(KeySpec(suite, key_dir / name, cert))
    if not specs:
        raise UserError(f"key directory {key_dir} holds no server-suite{{N}}.key file: "
                        "run `airshake ca issue-server --out DIR` first")
    return specs


def load_server_keys(backend: object, cfg: ServerConfig) -> list[ServerKey]:
    specs = list(cfg.keys)
    if cfg.key_dir is not None:
        given = {s.suite for s in specs}
        specs += [s for s in specs_in_dir(cfg.key_dir) if s.suite not in given]
    seen: set[int] = set()
    for s in specs:
        if s.suite in seen:
            raise UserError(f"two keys are configured for suite {s.suite}: keep one")
        seen.add(s.suite)
    return [load_server_key(backend, s) for s in specs]
