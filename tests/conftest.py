# tests/conftest.py: makes the portable tests importable under pytest exactly as
# tests/mprun.py does on MicroPython (firmware/lib, tests/portable and the root on sys.path),
# and runs every test from the project root, where the vector paths are relative to.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("firmware/lib", "tests/portable", ""):     # "": the root, for testkit/
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
os.chdir(ROOT)

# the closing line naming every skipped test group (loaded here: the xdist controller
# never loads tests/host/conftest.py)
pytest_plugins = ["testkit.skipped"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "soak: a long load, soak or benchmark run, or a timing or memory bound; "
        "`make test` deselects them (-m 'not soak'), `make soak` runs them")
