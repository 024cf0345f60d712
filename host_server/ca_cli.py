# host_server.ca_cli: the `airshake ca` command group: `ca init` makes the root key and
# certificate, `ca issue-server` makes B's static key and certificate C_B for a suite,
# `ca renew-server` gives that key a new certificate (for cron). The CA itself lives in
# host_server.ca; this module only parses flags and prints.
import argparse
import sys
from pathlib import Path

from host_server.ca import ALGS, CA, DEFAULT_CA_DAYS, DEFAULT_SERVER_DAYS, SUITE_KEYS
from host_server.errors import UserError


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days")
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError("days must be between 1 and 36500")
    return days


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "ca", help="the certificate authority: root key, B's certificates",
        description="The airshake certificate authority. It signs B's certificate C_B and "
                    "the devices' certificates C_A (devices are enrolled through the "
                    "certificate store: `airshake cs enroll`).")
    sub = group.add_subparsers(dest="ca_command", metavar="COMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    init = sub.add_parser(
        "init", help="make the CA's root key and self-signed certificate",
        description="Make the CA: DIR/ca.key (PKCS#8 PEM, mode 0600), DIR/ca.crt (PEM) and "
                    "DIR/ca.der (DER, the devices' trust anchor). An Ed25519 CA signs the "
                    "suite 0 certificates, a P-256 CA the suite 2 ones; either can sign any "
                    "key type. An existing CA is never overwritten.")
    init.add_argument("--dir", required=True, metavar="DIR", help="directory for the CA files")
    init.add_argument("--alg", choices=ALGS, default="ed25519",
                      help="the CA key: ed25519 (default) or p256 (ECDSA P-256)")
    init.add_argument("--name", default="airshake CA",
                      help="the CA's common name (default: %(default)s)")
    init.add_argument("--days", type=_days, default=DEFAULT_CA_DAYS,
                      help="validity in days (default: %(default)s)")
    init.set_defaults(func=cmd_init)

    server = sub.add_parser(
        "issue-server", help="make B's static key and certificate C_B for a suite",
        description="Make B's static key for a suite (0: X25519, 1: RSA-2048, 2: P-256) "
                    "and its certificate C_B signed by the CA: OUT/server-suiteN.key "
                    "(PKCS#8 PEM, mode 0600), OUT/server-suiteN.crt (PEM) and "
                    "OUT/server-suiteN.der. Existing files are never overwritten. C_B "
                    "carries the server role (extendedKeyUsage serverAuth) and NAME as its "
                    "common name: devices pin B by that name (`airshake device provision "
                    "--server-name NAME`), and the CA refuses devices of that name. C_B is "
                    "short-lived: renew it with `airshake ca renew-server` (e.g. from cron).")
    server.add_argument("--ca-dir", required=True, metavar="DIR",
                        help="the CA directory made by `airshake ca init`")
    server.add_argument("--suite", type=int, choices=sorted(SUITE_KEYS), required=True,
                        help="the suite the key is for: 0, 1 or 2")
    server.add_argument("--name", required=True,
                        help="B's name, the certificate's common name (e.g. b.example.net)")
    server.add_argument("--out", required=True, metavar="DIR",
                        help="directory for the key and certificate")
    server.add_argument("--days", type=_days, default=DEFAULT_SERVER_DAYS,
                        help="validity in days (default: %(default)s)")
    server.add_argument("--cs-url", metavar="URL",
                        help="also refuse NAME if a device enrolled in this certificate "
                             "store has it (the store refuses devices named like a server "
                             "in any case)")
    server.add_argument("--state-dir", metavar="DIR", default=".",
                        help="with --cs-url: the store's state directory, for its token "
                             "(default: the current directory; or $AIRSHAKE_ADMIN_TOKEN)")
    server.set_defaults(func=cmd_issue_server)

    renew = sub.add_parser(
        "renew-server", help="give B's keys new certificates (same key, same name)",
        description="Renew C_B: a new certificate for the same key and name, written over "
                    "KEY_DIR/server-suiteN.crt and .der at once (a reader sees the old or "
                    "the new file, never half of one); the previous ones are kept as "
                    ".crt.prev and .der.prev. A certificate with more than a third of --days "
                    "left is not renewed unless --force, so cron may run this daily. A "
                    "running B picks up the new .der by itself. Devices need nothing: the "
                    "key and the name they pin stay the same.")
    renew.add_argument("--ca-dir", required=True, metavar="DIR",
                       help="the CA directory made by `airshake ca init`")
    renew.add_argument("--key-dir", required=True, metavar="DIR",
                       help="B's key directory (the --out of `airshake ca issue-server`)")
    renew.add_argument("--suite", type=int, choices=sorted(SUITE_KEYS),
                       help="renew only this suite (default: every server-suiteN.key there)")
    renew.add_argument("--days", type=_days, default=DEFAULT_SERVER_DAYS,
                       help="validity of the new certificate in days (default: %(default)s)")
    renew.add_argument("--force", action="store_true",
                       help="renew even if the certificate is not due")
    renew.set_defaults(func=cmd_renew_server)


def cmd_init(args: argparse.Namespace) -> int:
    ca = CA.init(args.dir, args.alg, args.name, days=args.days)
    print(f"CA {args.name!r} ({ca.alg}) made in {ca.dir}: ca.key (secret, 0600), ca.crt, "
          "ca.der")
    return 0


def cmd_issue_server(args: argparse.Namespace) -> int:
    ca = CA.load(args.ca_dir)
    if args.cs_url:
        _check_no_device_named(args.cs_url, args.state_dir, args.name)
    key_path, der_path, warning = ca.issue_server(args.suite, args.name, args.out,
                                                  days=args.days)
    if warning:
        print(f"airshake: {warning}", file=sys.stderr)
    print(f"B's suite {args.suite} key ({SUITE_KEYS[args.suite]}): {key_path} (secret, 0600)")
    print(f"C_B: {der_path} (and {der_path.with_suffix('.crt').name})")
    return 0


def _check_no_device_named(cs_url: str, state_dir: str, name: str) -> None:
    """UserError if the store at cs_url lists a device called name (case-insensitively)."""
    import logging

    from host_server.cert_store.client import CSClient
    from host_server.cert_store.tokens import client_token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    certs = CSClient(cs_url, client_token(None, state_dir, admin=False)).certs()
    taken = [c["id"] for c in certs if str(c.get("name", "")).casefold() == name.casefold()]
    if taken:
        raise UserError(f"device {taken[0]} is enrolled as {name!r}: give B another name "
                        "(devices pin B by its name)")


def cmd_renew_server(args: argparse.Namespace) -> int:
    ca = CA.load(args.ca_dir)
    key_dir = Path(args.key_dir)
    if args.suite is not None:
        suites = [args.suite]
    else:
        suites = sorted(int(p.name[len("server-suite")]) for p in
                        key_dir.glob("server-suite[0-9].key"))
        if not suites:
            raise UserError(f"{key_dir} holds no server-suiteN.key: issue one with "
                            "`airshake ca issue-server`")
    for suite in suites:
        result, warning = ca.renew_server(key_dir, suite, days=args.days, force=args.force)
        if warning:
            print(f"airshake: {warning}", file=sys.stderr)
        print(f"suite {suite}: {result} ({key_dir / f'server-suite{suite}.der'})")
    return 0
