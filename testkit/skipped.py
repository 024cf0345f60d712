# testkit.skipped: a pytest plugin (tests/conftest.py loads it, so the xdist controller
# has it too): the run ends with one line naming each skipped test group and what would
# run it, nothing when nothing was skipped. A skip reason that starts "<group> tests (...)"
# names its group; any other skip is grouped under its module.
import os


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
