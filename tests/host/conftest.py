# tests/host/conftest.py: the session fixtures that start real servers for the scale-out
# tests (postgres, redis_server, slapd; tests/host/servers.py) are visible to every
# test module here; the run ends with one line naming each skipped test group and what
# would run it (nothing when nothing was skipped). The `timing` fixture splits a test
# with a wall-clock bound in two: the correctness variant (make test) and the bounded
# one, marked soak (make soak).
import os
import time

import pytest
from testkit.servers import postgres, redis_server, slapd  # noqa: F401


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "soak: a long load, soak or benchmark run, or a timing or memory bound; "
        "`make test` deselects them (-m 'not soak'), `make soak` runs them")


class Timing:
    """A test's wall-clock bound, asserted only in its soak variant (`make soak`, one test
    at a time, where the measured margin holds); `make test` checks that the thing happens,
    waited for with a generous deadline. start() then within(limit, what)."""

    def __init__(self, bounded):
        self.bounded = bounded
        self.t0 = time.monotonic()

    def start(self):
        self.t0 = time.monotonic()

    def within(self, limit, what, took=None):
        """took: seconds measured by the test itself (default: since start())."""
        took = time.monotonic() - self.t0 if took is None else took
        if self.bounded:
            print("%s took %.3f s (bound %.2f s)" % (what, took, limit))   # the margin, -s
            assert took < limit, "%s took %.2f s (bound %.2f s)" % (what, took, limit)
        return took


@pytest.fixture(params=[pytest.param(False, id="eventually"),
                        pytest.param(True, id="bounded", marks=pytest.mark.soak)])
def timing(request):
    return Timing(request.param)


def _skip_reason(report):
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    groups = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        if not reason.split(" (")[0].endswith(" tests"):
            # a skip without a group name: its module is the group
            name = os.path.basename(report.location[0])
            reason = "%s tests (%s)" % (name, reason)
        groups[reason] = groups.get(reason, 0) + 1
    if groups:
        terminalreporter.write_line("skipped: " + "; ".join(
            "%d %s" % (n, reason) for reason, n in groups.items()))
