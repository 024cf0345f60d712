# host_server.cli: the one `airshake` entry point. Each command group lives in its own
# module and adds itself with register(subparsers); this file only wires them and turns
# every UserError into one line on stderr and exit status 2.
import argparse
import importlib
import logging
import sys

from host_server.errors import UserError

# (module, group) pairs; a module that is not there yet is skipped
GROUPS = (
    ("host_server.ca_cli", "ca"),
    ("host_server.cert_store.cli", "cs"),
    ("host_server.server_b.cli", "server"),
    ("host_server.device_cli", "device"),
    ("host_server.demo_cli", "demo"),
    ("host_server.gateway.cli", "gateway"),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and the fix."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, "%s: error: %s (see `%s --help`)\n" % (self.prog, message, self.prog))

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        """Remember the innermost (sub)command parsed, so that an unknown flag points to
        that command's --help (argparse reports leftovers from the top parser)."""
        ns, extras = super().parse_known_args(args, namespace)
        if not hasattr(ns, "_command_prog"):
            ns._command_prog = self.prog
        return ns, extras


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="airshake",
        description="airshake: secure handshake for devices on slow radio links "
                    "(CA, certificate store, server B, device tools, demo).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=OneLineParser)
    for module_name, _group in GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        prog = getattr(args, "_command_prog", parser.prog)
        print("airshake: error: unrecognized arguments: %s (see `%s --help`)"
              % (" ".join(extras), prog), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UserError as e:
        print("airshake: error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("airshake: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
