# tests/host/conftest.py: the session fixtures that start real servers for the scale-out
# tests (postgres, redis_server, slapd; testkit/servers.py) are visible to every test
# module here (the line naming each skipped test group: testkit/skipped.py). The `timing`
# fixture splits a test with a wall-clock bound in two: the correctness variant (make
# test) and the bounded one, marked soak (make soak, marker: tests/conftest.py).
import time

import pytest
from testkit.servers import postgres, redis_server, slapd  # noqa: F401


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
