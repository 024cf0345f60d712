# tests/host/test_architecture.py: the dependency rules of issue 15, checked by
# tools/archcheck.py over this checkout: no import cycles between the modules of
# firmware/lib, host_server, tools, bench and testkit, and nothing there imports tests/
# (or puts tests/ on sys.path, or names a path in tests/ to run or to put on a device's
# MICROPYPATH); no private name of the core is used outside it, no wire
# bits are read outside its codec, and no Initiator loop exists outside airshake.shell.
# Plus the checker itself, on small trees it must flag.
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


def test_no_private_core_name_is_used_outside_the_core():
    assert archcheck.analyse(ROOT)["private"] == []


def test_wire_bits_are_read_only_by_the_codec():
    assert archcheck.analyse(ROOT)["wirebits"] == []


def test_the_initiator_is_driven_only_by_the_shell():
    assert archcheck.analyse(ROOT)["initloop"] == []


def test_checker_sees_a_cycle_through_a_function_level_import(tmp_path):
    found = _tree(tmp_path, {
        "host_server/__init__.py": "",
        "host_server/cert_store/__init__.py": "",
        "host_server/cert_store/store.py":
            "def open_store():\n    from host_server.cert_store import db\n",
        "host_server/cert_store/db.py": "from host_server.cert_store.store import open_store\n",
        "tests/x.py": "",
    })
    assert found["cycles"] == ["host_server.cert_store.db <-> host_server.cert_store.store"]


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
            import machine
            """,
        "tests/host/servers.py": "",
        "tools/linkemu/mp/machine.py": "",
    })
    # the stand-in `machine` is product (tools/linkemu/mp): importing it is no finding
    assert found["tests"] == ["bench/run.py:2 sys.path -> tests/",
                              "bench/run.py:3 imports servers"]


def test_checker_sees_a_product_module_naming_a_path_in_the_tests(tmp_path):
    # what host_server/gateway/demo_path.py did before the stand-ins moved to
    # tools/linkemu: run a script from tests/ and put tests/ on a device's MICROPYPATH
    found = _tree(tmp_path, {
        "host_server/demo_path.py": """\
            \"\"\"Runs the air (it was tests/host/lora_air.py).\"\"\"
            import os
            import subprocess
            AIR = ROOT / "tests" / "host" / "lora_air.py"
            FAKES = os.path.join(ROOT, "tests", "micropython", "fakes")
            ENV = {"MICROPYPATH": ".frozen:tests/micropython/fakes"}
            HELP = "the stand-ins once lived in tests/micropython/fakes"
            subprocess.Popen(["python", f"{ROOT}/tests/host/lora_air.py"])
            """,
        "testkit/support.py": 'VECTORS = "tests/vectors/"\n',
        "tests/x.py": "",
    })
    assert [f.split(" ")[0] for f in found["tests"]] == [
        "host_server/demo_path.py:4", "host_server/demo_path.py:5",
        "host_server/demo_path.py:6", "host_server/demo_path.py:8"]


def test_checker_sees_private_names_of_the_core(tmp_path):
    found = _tree(tmp_path, {
        "firmware/lib/airshake/__init__.py": "",
        "firmware/lib/airshake/crypto.py": "class B:\n    def __init__(self):\n"
                                           "        self._loaded = 1\n",
        "host_server/server_b.py": """\
            from airshake import crypto
            from airshake.crypto import _need
            crypto._passed = 0
            def f(backend):
                return backend._loaded
            """,
        "tests/x.py": "",
    })
    assert found["private"] == ["host_server/server_b.py:2 from airshake.crypto import _need",
                                "host_server/server_b.py:3 crypto._passed",
                                "host_server/server_b.py:5 backend._loaded"]


def test_checker_sees_wire_bits_and_an_initiator_loop_outside_their_homes(tmp_path):
    found = _tree(tmp_path, {
        "firmware/lib/airshake/__init__.py": "",
        "firmware/lib/airshake/codec.py": "def kind(d):\n    return d[0] >> 5\n",
        "host_server/loop.py": """\
            from airshake.initiator import Initiator
            def pump(ini, data):
                kind = data[0] >> 5
                hint = data[0] & 0x1F
                ini.handle_timer(0)
            """,
        "tests/x.py": "",
    })
    assert [f.split(" ")[0] for f in found["wirebits"]] == ["host_server/loop.py:3",
                                                            "host_server/loop.py:4"]
    assert [f.split(" ")[0] for f in found["initloop"]] == ["host_server/loop.py:5"]
