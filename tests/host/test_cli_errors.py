# tests/host/test_cli_errors.py: small errors a user meets, each driven through the real
# `airshake` command and each answered with one line saying what is wrong and what to do:
# a corrupt cs.db, a CS that fails while serving, B with its CS down, B's port taken, an
# unknown flag, an impossible port, and `cs serve --help` on --ca-dir.
import json
import os
import pty
import select
import signal
import socket
import subprocess
import time

import pytest
from b_support import Device, make_pki
from testkit.cs_support import (AIRSHAKE, CS_ENV, READER_TOKEN, ROOT, CSProcess,
                        assert_one_line_error, free_port, run)

PAGE = 4096


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _enrolled_db(tmp_path, ca_dir, devices=3):
    """A cs.db with `devices` enrolled, written by a CS that has stopped again."""
    with CSProcess(tmp_path, ca_dir) as cs:
        for _ in range(devices):
            Device().enroll(cs.url)
    db = tmp_path / "cs.db"
    assert not (tmp_path / "cs.db-wal").exists() or (tmp_path / "cs.db-wal").stat().st_size == 0
    return db


def _corrupt_certs_table(db):
    """Overwrite page 2 (the certs table's root, right after the schema page) with junk:
    the file header on page 1 stays intact."""
    with open(db, "r+b") as f:
        f.seek(PAGE)
        f.write(b"\xab" * PAGE)


def test_cs_serve_refuses_a_corrupt_database_at_start(pki, tmp_path):
    ca_dir, _ = pki
    db = _enrolled_db(tmp_path, ca_dir)
    _corrupt_certs_table(db)
    out = run("cs", "serve", "--db", db, "--ca-dir", ca_dir, "--port", free_port(),
              env=CS_ENV, timeout=30)
    line = assert_one_line_error(out, "certificate database", "is corrupt", "backup")
    assert str(db) in line


def test_cs_list_says_what_the_cs_said_when_its_store_fails(pki, tmp_path):
    ca_dir, _ = pki
    db = _enrolled_db(tmp_path, ca_dir)
    with CSProcess(tmp_path, ca_dir) as cs:
        # the CS checked the file at start and has not read the certs table since
        _corrupt_certs_table(db)
        out = run("cs", "list", "--cs-url", cs.url, env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
        line = assert_one_line_error(out, "the certificate database failed",
                                     "malformed", "check or restore the database")
        assert "HTTP 500" not in line
    events = [e["event"] for e in cs.log_lines()]
    assert "store_error" in events


def test_b_with_its_cs_down_says_so_in_plain_words(pki, tmp_path):
    ca_dir, key_dir = pki
    cs_url = "http://127.0.0.1:%d" % free_port()          # nothing listens there
    master, slave = pty.openpty()                           # a person watching stderr
    proc = subprocess.Popen(
        [AIRSHAKE, "server", "--ca-cert", ca_dir / "ca.crt", "--key-dir", key_dir,
         "--cs-url", cs_url, "--port", "0", "--metrics-port", "0",
         "--db", tmp_path / "b.db"],
        stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT,
        env=dict(os.environ, AIRSHAKE_CS_TOKEN=READER_TOKEN))
    os.close(slave)
    text = b""
    try:
        deadline = time.monotonic() + 20
        while b"airshake server: lost" not in text and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                text += os.read(master, 65536)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        os.close(master)
    lines = text.decode(errors="replace").splitlines()
    plain = [x for x in lines if x.startswith("airshake server: lost")]
    assert len(plain) == 1, lines
    assert cs_url in plain[0] and "airshake cs serve" in plain[0]
    lost = [json.loads(x) for x in lines if '"cs_stream_lost"' in x]
    assert lost and "airshake cs serve" in lost[0]["hint"]


def _b_args(pki, tmp_path, db, port=0, metrics_port=0):
    ca_dir, key_dir = pki
    return ("server", "--ca-cert", ca_dir / "ca.crt", "--key-dir", key_dir,
            "--cs-url", "http://127.0.0.1:9", "--port", port, "--metrics-port", metrics_port,
            "--db", db)


def test_b_leaves_no_database_file_when_its_udp_port_is_taken(pki, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        out = run(*_b_args(pki, tmp_path, tmp_path / "b.db", port=port),
                  env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
    assert_one_line_error(out, "UDP port %d" % port, "in use")
    assert sorted(os.listdir(tmp_path)) == []


def test_b_leaves_no_database_file_when_its_metrics_port_is_taken(pki, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run(*_b_args(pki, tmp_path, tmp_path / "b.db", metrics_port=port),
                  env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
    assert_one_line_error(out, "metrics port %d" % port)
    assert sorted(os.listdir(tmp_path)) == []


def test_b_keeps_an_existing_database_when_its_port_is_taken(pki, tmp_path):
    db = tmp_path / "b.db"
    db.write_bytes(b"")       # the user's file: never removed by a failed start
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        out = run(*_b_args(pki, tmp_path, db, port=taken.getsockname()[1]),
                  env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
    assert out.returncode == 2 and db.exists()


@pytest.mark.parametrize("argv, command", [
    (("server", "--bogus"), "airshake server"),
    (("cs", "serve", "--bogus"), "airshake cs serve"),
    (("cs", "list", "--bogus"), "airshake cs list"),
    (("--bogus",), "airshake"),
])
def test_an_unknown_flag_points_to_its_own_commands_help(argv, command):
    out = run(*argv)
    assert_one_line_error(out, "unrecognized arguments: --bogus",
                          "(see `%s --help`)" % command)


@pytest.mark.parametrize("argv", [
    ("cs", "list", "--cs-url", "http://127.0.0.1:99999"),
    ("server", "--cs-url", "http://127.0.0.1:99999"),
])
def test_port_99999_is_reported_as_an_invalid_port(argv, pki):
    ca_dir, key_dir = pki
    extra = ("--ca-cert", ca_dir / "ca.crt", "--key-dir", key_dir) if argv[0] == "server" else ()
    out = run(*argv, *extra, env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
    line = assert_one_line_error(out, "99999", "not a valid port", "1..65535")
    assert "cannot reach" not in line


def test_cs_serve_help_shows_ca_dir_as_required_in_usage_and_text():
    out = run("cs", "serve", "--help")
    assert out.returncode == 0
    usage = out.stdout.split("\n\n")[0]
    assert " --ca-dir DIR" in usage and "[--ca-dir" not in usage
    flat = " ".join(out.stdout.split())
    assert "--ca-dir DIR the CA directory made by `airshake ca init` (required" in flat
