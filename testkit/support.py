# testkit/support.py: helpers shared by the portable tests (CPython and MicroPython).
# Keeps the tests free of pytest: plain asserts, and raises_() for expected errors.
import sys
import json

IS_MICROPYTHON = sys.implementation.name == "micropython"


def vectors_dir():
    # Tests run from the project root on both runtimes (make test, tests/mprun.py).
    return "tests/vectors/"


def load_json(name):
    with open(vectors_dir() + name) as f:
        return json.load(f)


def unhex(s):
    return bytes.fromhex(s)


def raises_(exc_type, fn, *args):
    """Call fn(*args) and assert it raises exc_type; returns the exception."""
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("expected %s from %s" % (exc_type.__name__, fn))


def refusal(role):
    """The error of the first Dropped or Refused event the role has queued (the events
    before it are taken too), or None when there is none."""
    while True:
        e = role.next_event()
        if e is None:
            return None
        error = getattr(e, "error", None)
        if error is not None:
            return error


def refused_(exc_type, role, fn, *args):
    """Call fn(*args), a method of role that takes remote input: it must not raise, and
    role must report the input refused (a Dropped or Refused event) with an error of
    exc_type; returns that error."""
    fn(*args)
    error = refusal(role)
    if not isinstance(error, exc_type):
        raise AssertionError("expected a refusal with %s from %s, got %r"
                             % (exc_type, fn, error))
    return error


def backends():
    """Every crypto backend usable on this runtime (pure everywhere; pyca on CPython)."""
    from airshake.crypto import load_backend
    out = [load_backend("pure")]
    if not IS_MICROPYTHON:
        out.append(load_backend("pyca"))
    return out


def wycheproof_cases(name):
    """Yield (group, test) pairs of a Wycheproof file in tests/vectors/wycheproof/."""
    data = load_json("wycheproof/" + name)
    for group in data["testGroups"]:
        for test in group["tests"]:
            yield group, test
