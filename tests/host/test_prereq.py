"""tools/prereq.sh and the Makefile's use of it: before the venv set-up, a python3 older than
3.11, or one without its venv module (Debian's python3 without python3-venv), stops `make`
within a second with one line naming what is missing and the apt command."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREREQ = os.path.join(ROOT, "tools", "prereq.sh")


def fake_python(tmp_path, version):
    """A python3 on PATH that says it is `version` and otherwise runs this Python."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / "python3"
    exe.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "Python %s"; exit 0; }\n'
                   'exec %s "$@"\n' % (version, sys.executable))
    exe.chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]))


def without_ensurepip(tmp_path, env):
    """PYTHONPATH shadows ensurepip with a package that cannot be imported, as on a Debian
    python3 without python3-venv (ensurepip ships in that package)."""
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ensurepip')\n")
    return dict(env, PYTHONPATH=str(shadow.parent))


def prereq(env):
    return subprocess.run(["sh", PREREQ], capture_output=True, text=True, env=env, timeout=10)


def test_python_3_9_is_one_line_naming_the_version_and_the_apt_command(tmp_path):
    out = prereq(fake_python(tmp_path, "3.9.18"))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("make: python3 is Python 3.9.18; airshake needs 3.11 or newer")
    assert "apt-get install python3.11 python3.11-venv" in out.stderr


def test_no_venv_module_is_one_line_naming_python3_venv(tmp_path):
    out = prereq(without_ensurepip(tmp_path, fake_python(tmp_path, "3.11.2")))
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("make: python3 (Python 3.11.2) has no venv module (ensurepip)")
    assert "apt-get install python3-venv" in out.stderr


def test_a_good_python_passes_silently(tmp_path):
    for version in ("3.11.7", "3.12.1", "3.13.0", "4.0.0"):
        out = prereq(fake_python(tmp_path, version))
        assert (out.returncode, out.stdout, out.stderr) == (0, "", ""), (version, out.stderr)


def test_no_python3_at_all(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run(["/bin/sh", PREREQ, "python3"], capture_output=True, text=True,
                         env=dict(os.environ, PATH=str(empty)), timeout=10)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "python3 is not installed: apt-get install python3 python3-venv" in out.stderr


def test_make_stops_in_the_first_second_before_any_set_up(tmp_path):
    """`make setup` with a new VENV and python3 3.9: the check's line, before anything is
    created or installed."""
    venv = tmp_path / "venv"
    out = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "setup",
                          "VENV=%s" % venv], capture_output=True, text=True,
                         env={k: v for k, v in fake_python(tmp_path, "3.9.18").items()
                              if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}, timeout=30)
    assert out.returncode != 0
    lines = out.stderr.splitlines()
    assert lines[0].startswith("make: python3 is Python 3.9.18; airshake needs 3.11"), out.stderr
    assert all(line.startswith("make: ***") for line in lines[1:]), out.stderr  # make's own
    assert "setting up" not in out.stdout and not venv.exists()     # before any set-up
