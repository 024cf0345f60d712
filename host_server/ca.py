# host_server.ca: the airshake certificate authority. Owns the CA directory (ca.key,
# ca.crt, ca.der, servers.json: the names of the servers it issued), issuing and renewing
# B's certificates C_B and issuing the devices' certificates C_A with the role profile
# (docs/CS_API.md "Certificate profile"), the CRL, checking that a device certificate
# made elsewhere was issued by this CA and carries the device role, and the key-file
# helpers (load_public_key, load_private_key, write_private). Private keys are written
# mode 0600 and never logged. ID_A = SHA-256(SPKI DER)[:id_len] (docs/PROTOCOL.md §2.2).
# No certificate outlives the CA: an issued one is clipped to the CA's not_after.
from __future__ import annotations

import datetime
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import airshake.x509 as device_x509
from airshake.errors import CertificateError
from airshake.keys import identifier  # the one derivation of ID_A (re-exported here)
from host_server.errors import UserError

ALGS = ("ed25519", "p256")
SUITE_KEYS = {0: "X25519", 1: "RSA-2048", 2: "P-256"}
DEFAULT_ID_LEN = 8
DEFAULT_DEVICE_DAYS = 3650
DEFAULT_SERVER_DAYS = 30  # C_B is short-lived: renew it with `airshake ca renew-server`
DEFAULT_CA_DAYS = 7300
ROLE_SERVER = "server"
ROLE_DEVICE = "device"
_EKU = {ROLE_SERVER: ExtendedKeyUsageOID.SERVER_AUTH, ROLE_DEVICE: ExtendedKeyUsageOID.CLIENT_AUTH}
SERVERS_FILE = "servers.json"
BACKDATE = datetime.timedelta(hours=1)  # not_before slack for clocks running behind
CN_MAX = 64  # ub-common-name (RFC 5280)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo

CAPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
SubjectKey = x25519.X25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class CAError(ValueError):
    """A key, name or certificate the CA refuses. str(e) is one line saying why."""


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


def _key_usage(key_type: str, role: str) -> x509.KeyUsage:
    """What the key does in its role: X25519/P-256 agree keys; B's RSA key signs
    (suite 1), a device's RSA key decrypts the KEM (keyEncipherment)."""
    agree = key_type in ("x25519", "p256")
    rsa_sign = not agree and role == ROLE_SERVER
    return x509.KeyUsage(digital_signature=rsa_sign, content_commitment=False,
                         key_encipherment=not agree and not rsa_sign, data_encipherment=False,
                         key_agreement=agree, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _usage_needed(key_type: str, role: str) -> str:
    """The keyUsage bit (pyca attribute name) a certificate of this role must allow."""
    if key_type in ("x25519", "p256"):
        return "key_agreement"
    return "digital_signature" if role == ROLE_SERVER else "key_encipherment"


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace path with data at once (a reader sees the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}): check the directory")


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

    def not_after(self, days: int) -> tuple[datetime.datetime, str | None]:
        """The not_after of a certificate issued now for days: clipped to the CA's own
        not_after, with a one-line warning when it is. CAError if the CA has expired."""
        ca_end = self.cert.not_valid_after_utc
        if _now() >= ca_end:
            raise CAError(f"the CA certificate expired on {ca_end:%Y-%m-%d}: make a new CA")
        wanted = _now() + datetime.timedelta(days=days)
        if wanted <= ca_end:
            return wanted, None
        return ca_end, (f"warning: validity clipped to the CA's end, {ca_end:%Y-%m-%d} "
                        f"({days} days were asked)")

    def _leaf(self, public_key: SubjectKey, name: str, ski: bytes, days: int,
              role: str) -> bytes:
        """A certificate with the role profile: basicConstraints cA=false, keyUsage of
        the role, extendedKeyUsage serverAuth or clientAuth, SKI, AKI = the CA's SKI."""
        key_type = check_subject_key(public_key)
        end, _ = self.not_after(days)
        cert = (x509.CertificateBuilder().subject_name(_cn(check_name(name)))
                .issuer_name(self.cert.subject).public_key(public_key)
                .serial_number(_serial())
                .not_valid_before(_now() - BACKDATE)
                .not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(_key_usage(key_type, role), True)
                .add_extension(x509.ExtendedKeyUsage([_EKU[role]]), False)
                .add_extension(x509.SubjectKeyIdentifier(ski), False)
                .add_extension(self._aki(), False)
                .sign(self.key, self._hash()))
        return cert.public_bytes(DER)

    def _aki(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key())  # type: ignore[arg-type]

    def issue_device(self, public_key: SubjectKey, name: str, id_len: int = DEFAULT_ID_LEN,
                     days: int = DEFAULT_DEVICE_DAYS) -> bytes:
        """C_A (DER) with the device role: subject CN=name, subjectKeyIdentifier = ID_A.
        CAError if the key type or name is not acceptable, or the name is a server's."""
        self.check_device_name(name)
        ident = identifier(spki_der(public_key), id_len)
        return self._leaf(public_key, name, ident, days, ROLE_DEVICE)

    # -- the servers' names ------------------------------------------------------------

    def server_names(self) -> set[str]:
        """The names (CN) of every server certificate this CA issued (servers.json)."""
        path = self.dir / SERVERS_FILE
        try:
            names = json.loads(path.read_text()).get("names", [])
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, AttributeError) as e:
            raise UserError(f"{path} is unreadable ({e}): restore it or remove it and "
                            "renew the server certificates")
        return {str(n) for n in names}

    def _record_server(self, name: str) -> None:
        names = self.server_names()
        if name not in names:
            data = json.dumps({"names": sorted(names | {name})}, indent=1) + "\n"
            _atomic_write(self.dir / SERVERS_FILE, data.encode(), 0o644)

    def check_device_name(self, name: str) -> None:
        """CAError if a device would be named like a server (a device's CN never equals
        B's: the devices pin B by that name). Compared case-insensitively."""
        folded = name.strip().casefold()
        if any(folded == n.strip().casefold() for n in self.server_names()):
            raise CAError(f"{name!r} is the name of a server certificate of this CA: give "
                          "the device another name")

    def issue_server(self, suite: int, name: str, out_dir: str | Path,
                     days: int = DEFAULT_SERVER_DAYS) -> tuple[Path, Path, str | None]:
        """B's static key for suite and its C_B (server role): out_dir/server-suite{N}.key
        (0600), .crt (PEM) and .der. Returns (key_path, der_path, clip warning or None).
        Never overwrites; records name in servers.json."""
        if suite not in SUITE_KEYS:
            raise UserError(f"unknown suite {suite!r}: use 0 (X25519), 1 (RSA-2048) or "
                            "2 (P-256)")
        try:
            check_name(name)
            _, warning = self.not_after(days)
        except CAError as e:
            raise UserError(f"cannot issue the server certificate: {e}")
        out = Path(out_dir)
        base = out / f"server-suite{suite}"
        paths = [base.with_suffix(s) for s in (".key", ".crt", ".der")]
        for p in paths:
            if p.exists():
                raise UserError(f"{p} already exists: renew it with `airshake ca renew-server`"
                                ", remove it, or choose another --out")
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
        self._record_server(name)
        der = self._leaf(pub, name, identifier(spki_der(pub)), days, ROLE_SERVER)
        write_private(paths[0], _pem_private(key))
        _write(paths[1], x509.load_der_x509_certificate(der).public_bytes(PEM), 0o644)
        _write(paths[2], der, 0o644)
        return paths[0], paths[2], warning

    def renew_server(self, key_dir: str | Path, suite: int,
                     days: int = DEFAULT_SERVER_DAYS, force: bool = False,
                     now: datetime.datetime | None = None) -> tuple[str, str | None]:
        """A new C_B for the key in key_dir/server-suite{suite}.key, same name, same key.
        Renews only when less than a third of days is left (or force): cron may run it
        daily. The old .crt/.der are kept as .crt.prev/.der.prev; the new ones replace
        them atomically (.crt first, .der last: B reloads on the .der). Returns
        ("renewed" | "not due", warning or None)."""
        d = Path(key_dir)
        key_path, crt, der_path = (d / f"server-suite{suite}{s}" for s in
                                   (".key", ".crt", ".der"))
        key = load_private_key(key_path)
        old = _load_any_cert(der_path if der_path.exists() else crt)
        if spki_der(old.public_key()) != spki_der(key.public_key()):  # type: ignore
            raise UserError(f"{key_path} does not match the certificate next to it: "
                            "restore the pair or issue a new one with `ca issue-server`")
        cns = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise UserError(f"the certificate of {key_path} has no single common name: "
                            "issue a new one with `airshake ca issue-server`")
        name = str(cns[0].value)
        left = old.not_valid_after_utc - (now or _now())
        if not force and old.issuer == self.cert.subject \
                and left > datetime.timedelta(days=days) / 3:
            return "not due", None
        try:
            _, warning = self.not_after(days)
        except CAError as e:
            raise UserError(f"cannot renew the server certificate: {e}")
        self._record_server(name)
        pub = key.public_key()  # type: ignore[attr-defined]
        new = self._leaf(pub, name, identifier(spki_der(pub)), days, ROLE_SERVER)
        for path in (crt, der_path):
            if path.exists():
                _atomic_write(path.with_name(path.name + ".prev"), path.read_bytes(), 0o644)
        _atomic_write(crt, x509.load_der_x509_certificate(new).public_bytes(PEM), 0o644)
        _atomic_write(der_path, new, 0o644)
        return "renewed", warning

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

    def verify_issued(self, der: bytes, now: int | None = None,
                      role: str = ROLE_DEVICE) -> x509.Certificate:
        """Check that der is a certificate of role (a device's, by default) this CA
        issued: signed by it, valid now and not beyond the CA's own end, not a CA, its
        extendedKeyUsage naming the role and not the other one, its keyUsage (if any)
        allowing what its key does, of a key type airshake uses, and readable by the
        device/server X.509 reader (airshake.x509). Returns the pyca certificate;
        raises CAError."""
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
        if cert.not_valid_after_utc > self.cert.not_valid_after_utc:
            raise CAError(f"it is valid until {cert.not_valid_after_utc:%Y-%m-%d}, after "
                          f"its CA ({self.cert.not_valid_after_utc:%Y-%m-%d}): issue it "
                          "again within the CA's validity")
        ext = cert.extensions
        try:
            if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise CAError(f"it is a CA certificate: enroll {role} certificates only")
        except x509.ExtensionNotFound:
            pass
        try:
            key_type = check_subject_key(cert.public_key())
        except UnsupportedAlgorithm:
            raise CAError("its public key algorithm is not one airshake uses")
        _check_role(ext, key_type, role)
        try:
            device_x509.check_role(device_x509.parse_certificate(der), role)
        except CertificateError as e:
            raise CAError(f"airshake's X.509 reader refuses it ({e})")
        return cert


def _check_role(ext: x509.Extensions, key_type: str, role: str) -> None:
    """CAError unless extendedKeyUsage names role's purpose and not the other role's,
    and keyUsage (when present) allows what the key does in that role."""
    other = ROLE_SERVER if role == ROLE_DEVICE else ROLE_DEVICE
    try:
        eku = list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        raise CAError(f"it has no extendedKeyUsage: a {role} certificate needs "
                      f"{_EKU[role]._name} ({_EKU[role].dotted_string})")
    if _EKU[other] in eku:
        raise CAError(f"it carries the {other} role ({_EKU[other]._name}): a {role} "
                      "certificate must not")
    if _EKU[role] not in eku:
        raise CAError(f"its extendedKeyUsage lacks {_EKU[role]._name} "
                      f"({_EKU[role].dotted_string}), the {role} role")
    try:
        ku = ext.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    needed = _usage_needed(key_type, role)
    if not getattr(ku, needed):
        raise CAError(f"its keyUsage excludes {needed.replace('_', ' ')}, which its "
                      f"{key_type} key needs as a {role}")


def _load_any_cert(path: Path) -> x509.Certificate:
    data = _read(path, "certificate")
    try:
        return (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except ValueError:
        raise UserError(f"{path} is not a PEM or DER certificate: restore it")


_REASONS = {f.name.replace("_", ""): f for f in x509.ReasonFlags}


def _norm(reason: str) -> str:
    return "".join(c for c in reason.lower() if c.isalnum())
