# host_server.ca: the airshake certificate authority. Owns the CA directory (ca.key,
# ca.crt, ca.der), issuing B's certificates C_B and the devices' certificates C_A, the
# CRL, checking that a certificate made elsewhere was issued by this CA, and the key-file
# helpers (load_public_key, load_private_key, write_private). Private keys are written
# mode 0600 and never logged. ID_A = SHA-256(SPKI DER)[:id_len] (docs/PROTOCOL.md §2.2).
from __future__ import annotations

import datetime
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID

import airshake.x509 as device_x509
from airshake.errors import CertificateError
from host_server.errors import UserError

ALGS = ("ed25519", "p256")
SUITE_KEYS = {0: "X25519", 1: "RSA-2048", 2: "P-256"}
DEFAULT_ID_LEN = 8
DEFAULT_DEVICE_DAYS = 3650
DEFAULT_CA_DAYS = 7300
BACKDATE = datetime.timedelta(hours=1)  # not_before slack for clocks running behind
CN_MAX = 64  # ub-common-name (RFC 5280)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo

CAPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
SubjectKey = x25519.X25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class CAError(ValueError):
    """A key, name or certificate the CA refuses. str(e) is one line saying why."""


def identifier(spki_der: bytes, id_len: int = DEFAULT_ID_LEN) -> bytes:
    """ID_A: the first id_len bytes of SHA-256 over the SubjectPublicKeyInfo DER."""
    return hashlib.sha256(spki_der).digest()[:id_len]


def spki_der(public_key: object) -> bytes:
    return public_key.public_bytes(DER, SPKI)  # type: ignore[attr-defined]


# -- key files -------------------------------------------------------------------------

def write_private(path: Path, data: bytes) -> None:
    """Write a secret file with mode 0600; refuse to replace an existing file."""
    _write(path, data, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UserError(f"{path} already exists: remove it or choose another directory")
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}): check the directory")
    try:
        os.fchmod(fd, mode)  # the umask may only narrow; make it exact
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist: check the path")
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory: pass a file")
    except PermissionError:
        raise UserError(f"{what} {path} is not readable: check its permissions")


def load_private_key(path: str | Path) -> object:
    """An unencrypted private key from a PEM or DER file (PKCS#8 or traditional)."""
    data = _read(path, "key file")
    loader = (serialization.load_pem_private_key if b"-----BEGIN" in data
              else serialization.load_der_private_key)
    try:
        return loader(data, password=None)
    except TypeError:
        raise UserError(f"key file {path} is encrypted: airshake needs an unencrypted key "
                        "kept with mode 0600")
    except (ValueError, UnsupportedAlgorithm) as e:
        raise UserError(f"key file {path} holds no private key airshake can read ({e})")


def load_public_key(path: str | Path) -> object:
    """A public key from a file holding (PEM or DER) a SubjectPublicKeyInfo, a
    certificate, or a private key (only its public half is kept)."""
    data = _read(path, "key file")
    if b"-----BEGIN" in data:
        attempts = (lambda: serialization.load_pem_public_key(data),
                    lambda: x509.load_pem_x509_certificate(data).public_key(),
                    lambda: serialization.load_pem_private_key(data, None).public_key())
    else:
        attempts = (lambda: serialization.load_der_public_key(data),
                    lambda: x509.load_der_x509_certificate(data).public_key(),
                    lambda: serialization.load_der_private_key(data, None).public_key())
    for attempt in attempts:
        try:
            return attempt()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise UserError(f"{path} is not a public key, certificate or private key (PEM or DER): "
                    "pass the device's public key")


def check_subject_key(public_key: object) -> str:
    """The airshake key type of a device or server key; CAError if no suite uses it."""
    if isinstance(public_key, x25519.X25519PublicKey):
        return "x25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "p256"
        raise CAError(f"EC curve {public_key.curve.name} is not used by airshake: use P-256")
    if isinstance(public_key, rsa.RSAPublicKey):
        if not 2048 <= public_key.key_size <= 4096:
            raise CAError(f"RSA key of {public_key.key_size} bits: use 2048 to 4096 bits")
        return "rsa"
    raise CAError(f"{type(public_key).__name__.removesuffix('PublicKey') or 'this'} keys are "
                  "not used by airshake devices: use X25519, RSA-2048 or P-256")


def check_name(name: object) -> str:
    if not isinstance(name, str):
        raise CAError("the name must be a string")
    if not name.strip():
        raise CAError("the name is empty: give the device or server a name")
    if len(name) > CN_MAX:
        raise CAError(f"the name is {len(name)} characters long: at most {CN_MAX}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise CAError("the name contains control characters")
    return name


def _key_usage(key_type: str) -> x509.KeyUsage:
    agree = key_type in ("x25519", "p256")
    return x509.KeyUsage(digital_signature=not agree, content_commitment=False,
                         key_encipherment=not agree, data_encipherment=False,
                         key_agreement=agree, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _serial() -> int:
    return secrets.randbits(64) or 1


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _pem_private(key: object) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,  # type: ignore
                             serialization.NoEncryption())


# -- the CA ----------------------------------------------------------------------------

@dataclass
class CA:
    dir: Path
    key: CAPrivateKey
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(DER)

    @property
    def alg(self) -> str:
        return "ed25519" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "p256"

    def _hash(self) -> hashes.SHA256 | None:
        return None if self.alg == "ed25519" else hashes.SHA256()

    @classmethod
    def init(cls, ca_dir: str | Path, alg: str, name: str,
             days: int = DEFAULT_CA_DAYS) -> CA:
        """Make a root key and self-signed certificate in ca_dir; refuse to overwrite."""
        d = Path(ca_dir)
        if alg not in ALGS:
            raise UserError(f"unknown CA algorithm {alg!r}: use ed25519 or p256")
        try:
            name = check_name(name)
        except CAError as e:
            raise UserError(f"bad CA name: {e}")
        for f in ("ca.key", "ca.crt", "ca.der"):
            if (d / f).exists():
                raise UserError(f"a CA already exists in {d} ({f}): keep it, or choose "
                                "another --dir (airshake never overwrites a CA)")
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the CA directory {d} ({e.strerror}): "
                            "choose another --dir")
        key: CAPrivateKey = (ed25519.Ed25519PrivateKey.generate() if alg == "ed25519"
                             else ec.generate_private_key(ec.SECP256R1()))
        pub = key.public_key()
        now = _now()
        builder = (x509.CertificateBuilder().subject_name(_cn(name)).issuer_name(_cn(name))
                   .public_key(pub).serial_number(_serial())
                   .not_valid_before(now - BACKDATE)
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=False, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                       key_cert_sign=True, crl_sign=True, encipher_only=False,
                       decipher_only=False), True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), False))
        cert = builder.sign(key, None if alg == "ed25519" else hashes.SHA256())
        write_private(d / "ca.key", _pem_private(key))
        _write(d / "ca.crt", cert.public_bytes(PEM), 0o644)
        _write(d / "ca.der", cert.public_bytes(DER), 0o644)
        return cls(d, key, cert)

    @classmethod
    def load(cls, ca_dir: str | Path) -> CA:
        d = Path(ca_dir)
        if not (d / "ca.key").exists() or not (d / "ca.crt").exists():
            raise UserError(f"no CA in {d}: run `airshake ca init --dir {d}` first")
        key = load_private_key(d / "ca.key")
        try:
            cert = x509.load_pem_x509_certificate(_read(d / "ca.crt", "CA certificate"))
        except ValueError:
            raise UserError(f"{d / 'ca.crt'} is not a PEM certificate: restore it from "
                            "ca.der or a backup")
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise UserError(f"{d / 'ca.key'} is not an Ed25519 or P-256 key")
        if spki_der(key.public_key()) != spki_der(cert.public_key()):
            raise UserError(f"{d / 'ca.key'} does not match {d / 'ca.crt'}: restore the "
                            "pair from a backup")
        return cls(d, key, cert)

    # -- issuing -------------------------------------------------------------------------

    def _leaf(self, public_key: SubjectKey, name: str, ski: bytes, days: int) -> bytes:
        key_type = check_subject_key(public_key)
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(_cn(check_name(name)))
                .issuer_name(self.cert.subject).public_key(public_key)
                .serial_number(_serial())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(_key_usage(key_type), True)
                .add_extension(x509.SubjectKeyIdentifier(ski), False)
                .sign(self.key, self._hash()))
        return cert.public_bytes(DER)

    def issue_device(self, public_key: SubjectKey, name: str, id_len: int = DEFAULT_ID_LEN,
                     days: int = DEFAULT_DEVICE_DAYS) -> bytes:
        """C_A (DER): subject CN=name, subjectKeyIdentifier = ID_A. CAError if the key
        type or name is not acceptable."""
        ident = identifier(spki_der(public_key), id_len)
        return self._leaf(public_key, name, ident, days)

    def issue_server(self, suite: int, name: str, out_dir: str | Path,
                     days: int = DEFAULT_DEVICE_DAYS) -> tuple[Path, Path]:
        """B's static key for suite and its C_B: out_dir/server-suite{N}.key (0600),
        .crt (PEM) and .der. Returns (key_path, der_path). Never overwrites."""
        if suite not in SUITE_KEYS:
            raise UserError(f"unknown suite {suite!r}: use 0 (X25519), 1 (RSA-2048) or "
                            "2 (P-256)")
        try:
            check_name(name)
        except CAError as e:
            raise UserError(f"bad server name: {e}")
        out = Path(out_dir)
        base = out / f"server-suite{suite}"
        paths = [base.with_suffix(s) for s in (".key", ".crt", ".der")]
        for p in paths:
            if p.exists():
                raise UserError(f"{p} already exists: remove it or choose another --out")
        try:
            out.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {out} ({e.strerror}): choose another --out")
        key: object
        if suite == 0:
            key = x25519.X25519PrivateKey.generate()
        elif suite == 1:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        pub = key.public_key()  # type: ignore[attr-defined]
        der = self._leaf(pub, name, identifier(spki_der(pub)), days)
        write_private(paths[0], _pem_private(key))
        _write(paths[1], x509.load_der_x509_certificate(der).public_bytes(PEM), 0o644)
        _write(paths[2], der, 0o644)
        return paths[0], paths[2]

    def crl(self, revoked: list[tuple[int, int, str]], number: int | None = None,
            valid_s: int = 86400) -> bytes:
        """A CRL (DER) listing (serial, unix time, reason) entries. A reason that names
        an RFC 5280 CRLReason (e.g. "keyCompromise", "superseded") becomes a reasonCode
        extension; free text is kept only in the store."""
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now).next_update(now + datetime.timedelta(seconds=valid_s))
                   .add_extension(x509.CRLNumber(number if number is not None
                                                 else int(now.timestamp())), False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), False))
        for serial, at, reason in revoked:
            entry = (x509.RevokedCertificateBuilder().serial_number(serial)
                     .revocation_date(datetime.datetime.fromtimestamp(
                         at, datetime.timezone.utc)))
            flag = _REASONS.get(_norm(reason))
            if flag is not None and flag is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(flag), False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, self._hash()).public_bytes(DER)

    def verify_issued(self, der: bytes, now: int | None = None) -> x509.Certificate:
        """Check that der is a device or server certificate this CA issued, valid now,
        of a key type airshake uses, and readable by the device/server X.509 reader
        (airshake.x509). Returns the pyca certificate; raises CAError."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise CAError("not a DER X.509 certificate")
        if cert.issuer != self.cert.subject:
            raise CAError(f"issued by {cert.issuer.rfc4514_string()!r}, not by this CA "
                          f"({self.cert.subject.rfc4514_string()!r})")
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise CAError("its signature does not verify with this CA's key")
        t = datetime.datetime.now(datetime.timezone.utc) if now is None else \
            datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        if t > cert.not_valid_after_utc:
            raise CAError("it expired on %s" % cert.not_valid_after_utc.isoformat())
        if t < cert.not_valid_before_utc:
            raise CAError("it is not valid before %s" % cert.not_valid_before_utc.isoformat())
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                raise CAError("it is a CA certificate: enroll device certificates only")
        except x509.ExtensionNotFound:
            pass
        try:
            check_subject_key(cert.public_key())
        except UnsupportedAlgorithm:
            raise CAError("its public key algorithm is not one airshake uses")
        try:
            device_x509.parse_certificate(der)
        except CertificateError as e:
            raise CAError(f"airshake's X.509 reader refuses it ({e})")
        return cert


_REASONS = {f.name.replace("_", ""): f for f in x509.ReasonFlags}


def _norm(reason: str) -> str:
    return "".join(c for c in reason.lower() if c.isalnum())
