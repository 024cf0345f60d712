# tests/host/conftest.py: the session fixtures that start real servers for the scale-out
# tests (postgres, redis_server, slapd; tests/host/servers.py) are visible to every
# test module here; the run ends with one line naming each skipped test group and what
# would run it (nothing when nothing was skipped).
import os

from servers import postgres, redis_server, slapd  # noqa: F401


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "soak: a long load, soak or benchmark run, or a timing or memory bound; "
        "`make test` deselects them (-m 'not soak'), `make soak` runs them")


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
