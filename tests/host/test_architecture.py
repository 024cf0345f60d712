# tests/host/test_architecture.py: the dependency rules of issue 15, checked by
# tools/archcheck.py over this checkout: no import cycles between the modules of
# firmware/lib, host_server, tools, bench and testkit, and nothing there imports tests/
# (or puts tests/ on sys.path). Plus the checker itself, on small trees it must flag.
import textwrap
from pathlib import Path

from airshake_tools import archcheck

ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return archcheck.analyse(tmp_path)


def test_no_import_cycles():
    assert archcheck.analyse(ROOT)["cycles"] == []


def test_nothing_imports_the_tests():
    assert archcheck.analyse(ROOT)["tests"] == []


def test_checker_sees_a_cycle_through_a_function_level_import(tmp_path):
    found = _tree(tmp_path, {
        "host_server/__init__.py": "",
        "host_server/cs/__init__.py": "",
        "host_server/cs/store.py": "def open_store():\n    from host_server.cs import db\n",
        "host_server/cs/db.py": "from host_server.cs.store import open_store\n",
        "tests/x.py": "",
    })
    assert found["cycles"] == ["host_server.cs.db <-> host_server.cs.store"]


def test_checker_counts_a_submodule_not_its_package(tmp_path):
    # pkg/__init__ imports pkg.a; pkg.b does `from pkg import a`: an edge to pkg.a only
    found = _tree(tmp_path, {
        "bench/__init__.py": "from bench import b\n",
        "bench/a.py": "",
        "bench/b.py": "from bench import a\n",
        "tests/x.py": "",
    })
    assert found["cycles"] == []


def test_checker_sees_test_imports_and_sys_path_edits(tmp_path):
    found = _tree(tmp_path, {
        "bench/run.py": """\
            import sys
            sys.path.insert(0, "tests/host")
            import servers
            from fakes_ok import machine
            """,
        "tests/host/servers.py": "",
        "tests/micropython/fakes/machine.py": "",
    })
    assert found["tests"] == ["bench/run.py:2 sys.path -> tests/",
                              "bench/run.py:3 imports servers"]


def test_checker_sees_private_names_of_the_core(tmp_path):
    found = _tree(tmp_path, {
        "firmware/lib/airshake/__init__.py": "",
        "firmware/lib/airshake/crypto.py": "class B:\n    def __init__(self):\n"
                                           "        self._loaded = 1\n",
        "host_server/b.py": """\
            from airshake import crypto
            from airshake.crypto import _need
            crypto._passed = 0
            def f(backend):
                return backend._loaded
            """,
        "tests/x.py": "",
    })
    assert found["private"] == ["host_server/b.py:2 from airshake.crypto import _need",
                                "host_server/b.py:3 crypto._passed",
                                "host_server/b.py:5 backend._loaded"]
