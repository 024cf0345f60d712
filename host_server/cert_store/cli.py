# host_server.cert_store.cli: the `airshake cs` command group: `serve` runs the certificate store;
# `enroll`, `revoke` and `list` are its admin client. Flags only; the service lives in
# host_server.cert_store.service and the HTTP client in host_server.cert_store.client.
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from typing import TYPE_CHECKING

from host_server.cert_store import DEFAULT_PORT, DEFAULT_URL, TOKEN_ENV, URL_ENV
from host_server.cert_store.tokens import READER_ENV
from host_server.errors import UserError

if TYPE_CHECKING:
    from host_server.cert_store.client import CSClient

# the service (uvicorn, starlette) and the client (httpx) are imported by the commands
# that need them, so `airshake --help` and the client commands start fast


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "cs", help="the certificate store: serve, enroll, revoke, list",
        description="The certificate store CS. Server B fetches a device's certificate C_A "
                    "from it by the device's ID_A, and learns of revocations at once over "
                    "server-sent events. The HTTP API is in docs/CS_API.md.")
    sub = group.add_subparsers(dest="cs_command", metavar="COMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    s = sub.add_parser(
        "serve", help="run the certificate store service",
        description="Run the certificate store (HTTP, JSON logs on stderr, Prometheus "
                    "metrics on /metrics). Settings come from flags, then the [cs] table "
                    "of --config (keys: db, ca_dir, host, port, id_len, admin_token, "
                    "reader_token, state_dir, cert_days, instance; relative paths are "
                    "relative to the file). The store is closed: enroll and revoke need the "
                    "admin token, reading certificates, IDs and revocations the reader token "
                    "(B's) or the admin token; /health, /metrics and /crl are open. Tokens "
                    f"come from ${TOKEN_ENV} / ${READER_ENV} or the file; else the first start "
                    "makes them and writes STATE_DIR/admin.token and reader.token (mode "
                    "0600), reused later. Stops cleanly on SIGTERM or Ctrl-C.")
    s.add_argument("--config", metavar="FILE", help="TOML file with a [cs] table")
    s.add_argument("--db", metavar="URL",
                   help="the store: a SQLite file or sqlite:///path (default: cs.db), "
                        "postgresql://USER@HOST:PORT/DB (password in $PGPASSWORD), or "
                        "ldap://HOST:PORT/BASE-DN for a read-only X.509 directory")
    ca_dir = s.add_argument("--ca-dir", dest="ca_dir", metavar="DIR",
                            help="the CA directory made by `airshake ca init` (required: "
                                 "here or as ca_dir in the --config file)")
    s.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, help=f"TCP port (default: {DEFAULT_PORT})")
    s.add_argument("--id-len", dest="id_len", type=int,
                   help="bytes of SHA-256(SPKI) in a device ID, as configured on the devices "
                        "and B (default: 8)")
    s.add_argument("--cert-days", dest="cert_days", type=int,
                   help="validity of issued device certificates in days (default: 3650)")
    s.add_argument("--instance", help="name of this instance in /health (default: host name)")
    s.add_argument("--state-dir", dest="state_dir", metavar="DIR",
                   help="where admin.token and reader.token are kept (default: the "
                        "directory of the SQLite db; the current directory for "
                        "postgresql:// and ldap://)")
    s.set_defaults(func=cmd_serve)
    # the usage line shows --ca-dir as required, as it is; argparse itself must not
    # insist, since the --config file may give it
    ca_dir.required = True
    s.usage = s.format_usage().removeprefix("usage: ").strip()
    ca_dir.required = False

    def client_flags(p: argparse.ArgumentParser, admin: bool) -> None:
        p.add_argument("--cs-url", dest="cs_url", default=os.environ.get(URL_ENV, DEFAULT_URL),
                       help=f"the certificate store (default: ${URL_ENV} or {DEFAULT_URL})")
        p.add_argument("--state-dir", dest="state_dir", metavar="DIR", default=".",
                       help="the CS's state directory: the token is read from "
                            "DIR/admin.token" + ("" if admin else " (or reader.token)") +
                            " (default: the current directory)")
        p.add_argument("--admin-token", dest="admin_token",
                       help=f"the admin token itself (better: ${TOKEN_ENV} or --state-dir, "
                            "which keep it out of the process list)")

    e = sub.add_parser(
        "enroll", help="enroll a device key (or a certificate made by this CA)",
        description="Enroll a device: the store's CA issues C_A for the public key (subject "
                    "CN = --name, subjectKeyIdentifier = ID_A) and stores it; or store a "
                    "certificate made elsewhere (e.g. with openssl) that this CA signed. "
                    "Prints the device's ID_A in hex. Refused if the ID collides with an "
                    "enrolled key.")
    client_flags(e, admin=True)
    e.add_argument("--name", help="the device's name (required with --public-key)")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--public-key", dest="public_key", metavar="FILE",
                      help="the device's public key: PEM or DER SubjectPublicKeyInfo (a "
                           "certificate or private key file works too; only the public "
                           "key is sent)")
    what.add_argument("--cert", metavar="FILE", help="a PEM or DER certificate signed by "
                                                     "this CA")
    e.set_defaults(func=cmd_enroll)

    r = sub.add_parser(
        "revoke", help="revoke a device by its ID",
        description="Revoke the certificate enrolled under ID (hex). Every connected B is "
                    "told at once; the CRL lists it. Revoking twice changes nothing.")
    client_flags(r, admin=True)
    r.add_argument("id", metavar="ID", help="the device's ID_A in hex")
    r.add_argument("--reason", default="unspecified",
                   help="why, e.g. keyCompromise, superseded, cessationOfOperation, or any "
                        "text (default: unspecified)")
    r.set_defaults(func=cmd_revoke)

    ls = sub.add_parser("list", help="list enrolled devices",
                        description="List the enrolled certificates: ID, name, expiry, "
                                    "and whether revoked.")
    client_flags(ls, admin=False)
    ls.set_defaults(func=cmd_list)


def cmd_serve(args: argparse.Namespace) -> int:
    from host_server.cert_store.service import resolve, serve
    return serve(resolve(args), verbose=getattr(args, "verbose", False))


def _client(args: argparse.Namespace, admin: bool = True) -> CSClient:
    from host_server.cert_store.client import CSClient
    from host_server.cert_store.tokens import client_token
    if not getattr(args, "verbose", False):  # httpx logs every request at INFO
        logging.getLogger("httpx").setLevel(logging.WARNING)
    check_url_port(args.cs_url, "--cs-url")
    return CSClient(args.cs_url, client_token(args.admin_token, args.state_dir, admin))


def check_url_port(url: str, flag: str) -> None:
    """A URL whose port is not a TCP port is a typo to report as such, not as a CS that
    cannot be reached."""
    from urllib.parse import urlsplit
    try:
        _ = urlsplit(url).port
    except ValueError:
        port = urlsplit(url).netloc.rsplit(":", 1)[-1]
        raise UserError(f"{flag} {url}: {port!r} is not a valid port: use 1..65535")


def cmd_enroll(args: argparse.Namespace) -> int:
    from host_server.ca import load_public_key, spki_der
    client = _client(args)
    if args.public_key:
        if not args.name:
            raise UserError("--name is missing: give the device a name")
        answer = client.enroll_key(args.name, spki_der(load_public_key(args.public_key)))
    else:
        answer = client.enroll_cert(_read_cert(args.cert), args.name)
    if answer.get("warning"):    # e.g. the validity was clipped to the CA's end
        print(f"airshake: {answer['warning']}", file=sys.stderr)
    print(answer["id"])
    return 0


def _read_cert(path: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise UserError(f"cannot read certificate {path} ({e.strerror}): check the path")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        x509.load_der_x509_certificate(data)
        return data
    except ValueError:
        raise UserError(f"{path} is not a PEM or DER certificate: pass the certificate file")


def cmd_revoke(args: argparse.Namespace) -> int:
    rev = _client(args).revoke(args.id.lower(), args.reason)
    when = datetime.datetime.fromtimestamp(rev["time"], datetime.timezone.utc)
    print(f"revoked {rev['id']} at {when:%Y-%m-%d %H:%M:%S} UTC ({rev['reason']}), "
          f"seq {rev['seq']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    certs = _client(args, admin=False).certs()
    if not certs:
        print("no certificates enrolled", file=sys.stderr)
        return 0
    rows = [("ID", "NAME", "NOT AFTER (UTC)", "STATUS")]
    for c in certs:
        until = datetime.datetime.fromtimestamp(c["not_after"], datetime.timezone.utc)
        rows.append((c["id"], c["name"], f"{until:%Y-%m-%d}",
                     "revoked" if c["revoked"] else "valid"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r[:3], widths)) + "  " + r[3])
    return 0
