"""Self-tests once per firmware (device.backend): the real firmware on the MicroPython
binary runs the crypto backend's known-answer tests when its code is first used, records
the passes in airshake-data/selftest.json keyed by a hash of the crypto code and the
MicroPython build, skips them while that key matches, runs them again when it changes,
and never takes a failure (or a record it cannot read) as a pass. The backend is the
one the firmware holds: pure here (no ucryptography in either binary)."""
import json
import os

import pytest

from airshake.crypto import load_backend, passed_primitives, forget_backends
from airshake.errors import UsageError
from testkit.device_server import Device, TestServerB, lines, mp

HANDSHAKE_PRIMS = {"sha256", "hmac_sha256", "aes_ccm", "x25519", "ed25519"}


@pytest.fixture
def server():
    with TestServerB() as b:
        yield b


def ran(out):
    """The primitives whose tests ran in this wake (the `selftest` lines)."""
    got = []
    for ln in lines(out, "selftest"):
        fields = dict(f.split("=", 1) for f in ln.split() if "=" in f)
        got += fields["ran"].split(",")
    return got


def record(dev):
    return json.loads(dev.read("selftest.json"))


FROZEN = ("self-test record tests (this binary has the crypto code frozen in, without a "
          "build id, airshake_build: its self-tests run on every wake)")


def code_key(dev):
    # the path as main.py makes it: on the twin the frozen code comes before lib/
    out = mp(dev.root, code="import sys\nif 'lib' not in sys.path: sys.path.insert(0, 'lib')\n"
                            "from device import backend\nprint(backend.code_key('pure'))")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def recordable(tmp_path, server, **cfg):
    """A device whose firmware can record its self-tests (its crypto code on its
    filesystem, as the stock firmware with deployed files has it); skip otherwise."""
    dev = Device(tmp_path / "dev", server, **cfg)
    if code_key(dev) == "None":
        pytest.skip(FROZEN)
    return dev


def deployed_crypto(tmp_path, server, **cfg):
    """A recordable device whose crypto code is the files on its filesystem (the stock
    firmware with deployed files), for the tests that change those files; skip on a
    frozen build (its crypto code is in the image, keyed by airshake_build.ID)."""
    dev = recordable(tmp_path, server, **cfg)
    out = mp(dev.root, code="try:\n import airshake_build\n print('frozen')\n"
                            "except ImportError:\n print('files')")
    if out.stdout.strip() == "frozen":
        pytest.skip("self-test tests that change the deployed crypto files (this binary "
                    "runs its frozen crypto code: a new image, a new airshake_build.ID)")
    return dev


def crypto_file(dev, name):
    return os.path.join(dev.root, "lib", "airshake", "crypto", name)


def test_first_wake_tests_and_records_later_wakes_skip(tmp_path, server):
    dev = recordable(tmp_path, server, max_records=1)
    out = dev.run()
    assert set(ran(out)) == HANDSHAKE_PRIMS | {"random"}
    assert set(record(dev)["passed"]) == HANDSHAKE_PRIMS | {"random"}
    assert "crypto=pure" in lines(out, "wake")[0]
    out = dev.run()                                   # a record wake: nothing tested
    assert ran(out) == [] and lines(out, "reply")
    out = dev.run()                                   # a handshake: only the RNG check
    assert ran(out) == ["random"] and lines(out, "confirmed")
    assert "selftest_ms=" in lines(out, "confirmed")[0]


def test_wakes_in_one_process_use_the_record_like_reboots(tmp_path, server):
    dev = recordable(tmp_path, server, max_records=1)
    out = dev.run(cycles=3)
    assert len(lines(out, "confirmed")) == 2
    assert len(lines(out, "selftest")) == 3           # wake 1 (two loads) and wake 3's RNG


def test_changed_crypto_code_runs_the_tests_again(tmp_path, server):
    dev = deployed_crypto(tmp_path, server)
    dev.run()
    key = record(dev)["key"]
    with open(crypto_file(dev, "aes.py"), "a") as f:
        f.write("# a redeploy changed this file\n")
    out = dev.run()
    assert set(ran(out)) == {"sha256", "hmac_sha256", "aes_ccm"}
    assert record(dev)["key"] != key and lines(out, "reply")


@pytest.mark.parametrize("damage", ["other_key", "garbage", "not_a_list"])
def test_a_record_it_cannot_trust_means_the_tests_run(tmp_path, server, damage):
    dev = recordable(tmp_path, server)
    dev.run()
    rec = record(dev)
    if damage == "other_key":
        rec["key"] = "0" * 32 + ":pure"
        text = json.dumps(rec)
    elif damage == "garbage":
        text = "{\"key\": "
    else:
        rec["passed"] = "sha256"
        text = json.dumps(rec)
    with open(dev.path("selftest.json"), "w") as f:
        f.write(text)
    out = dev.run()
    assert set(ran(out)) == {"sha256", "hmac_sha256", "aes_ccm"} and lines(out, "reply")


def test_a_failure_is_never_recorded_nor_trusted(tmp_path, server):
    """The deployed AES-CCM is broken (what a bad deploy or a miscompiled build gives):
    the changed code runs the tests, AES-CCM fails, the wake sends nothing and no pass is
    recorded for that code; the next wake tests (and fails) again."""
    dev = deployed_crypto(tmp_path, server)
    dev.run()
    before = record(dev)
    with open(crypto_file(dev, "pure.py"), "a") as f:
        f.write("\n_sealed = PureBackend.aes_ccm_encrypt\n"
                "PureBackend.aes_ccm_encrypt = lambda s, k, n, a, p: "
                "_sealed(s, k, n, a, p)[::-1]\n")
    for _ in range(2):
        out = dev.run()
        assert any("failed self-tests: aes_ccm" in ln for ln in lines(out, "error")), out.stdout
        assert not lines(out, "record") and not lines(out, "selftest")
        assert record(dev) == before          # the old code's passes, under the old key
    assert [how for how, _ in server.received] == ["m3"]


def test_selftest_tables_are_released_after_the_tests(tmp_path, server):
    dev = recordable(tmp_path, server)
    dev.run()
    out = mp(dev.root, code="import os, sys; sys.path.insert(0, 'lib')\n"
                            "from device import backend\n"
                            "os.remove(backend.files.SELFTEST)\n"
                            "backend.load(('sha256', 'aes_ccm'))\n"
                            "print('selftest' in str(list(sys.modules)))")
    assert out.stdout.split() == ["False"], out.stdout + out.stderr


def test_trusted_primitives_are_not_run_and_count_as_passed():
    calls = []
    import airshake.crypto as crypto
    from airshake.crypto.pure import PureBackend

    class Counting(PureBackend):
        def sha256(self, data):
            calls.append("sha256")
            return PureBackend.sha256(self, data)

    original = crypto._construct
    crypto._construct = lambda name: Counting()
    try:
        load_backend("trusted-for-test", ("sha256",), trusted=("sha256",))
        assert calls == []
        assert passed_primitives("trusted-for-test") == ("sha256",)
    finally:
        crypto._construct = original
        forget_backends()
    with pytest.raises(UsageError):
        load_backend(None, ("sha256",), trusted=("sha256",))


def test_frozen_code_without_a_build_id_is_tested_on_every_wake(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    if code_key(dev) != "None":
        pytest.skip("a frozen firmware without a build id (tools/build_firmware.py freezes "
                    "airshake_build into every image it makes; the stock binary's crypto "
                    "code is on the filesystem)")
    for _ in range(2):
        out = dev.run()
        assert set(ran(out)) >= {"sha256", "hmac_sha256", "aes_ccm"}
        assert all(ln.endswith("not-recorded") for ln in lines(out, "selftest"))
    assert not os.path.exists(dev.path("selftest.json"))
    # with the build id a frozen build carries (here a module beside the firmware, where
    # the image would have it frozen) the passes are recorded under it
    for build, tested in (("build-1", True), ("build-1", False), ("build-2", True)):
        with open(os.path.join(dev.root, "airshake_build.py"), "w") as f:
            f.write("ID = %r\n" % build)
        out = dev.run()
        assert bool(set(ran(out)) - {"random"}) == tested, (build, out.stdout)


PROBE = """\
# stands in for ucryptography with every primitive broken: any use is logged
class _Probe:
    def __getattr__(self, name):
        with open("probe.log", "a") as f:
            f.write(name + "\\n")
        raise AttributeError(name)


ec = hashes = hmac = ed25519 = serialization = utils = rsa = padding = _Probe()
"""


def test_a_firmware_with_ucryptography_chooses_ucrypto_and_the_tests_decide_each_primitive(
        tmp_path, server):
    """Neither binary here has ucryptography (its twin is another helper's): a stand-in
    `cryptography` module whose every primitive is broken makes the firmware choose the
    ucrypto backend, whose known-answer tests then take each primitive from the pure code;
    the wake completes and says which backend it chose. The choices are recorded with the
    passes: the next boots route as recorded, without touching ucryptography again."""
    dev = recordable(tmp_path, server, max_records=1)
    probe = os.path.join(dev.root, "probe.log")
    with open(os.path.join(dev.root, "cryptography.py"), "w") as f:
        f.write(PROBE)
    out = dev.run()
    assert "crypto=ucrypto" in lines(out, "wake")[0]
    assert all("backend=ucrypto" in ln for ln in lines(out, "selftest"))
    assert lines(out, "confirmed") and [how for how, _ in server.received] == ["m3"]
    routes = record(dev)["routes"]
    assert set(routes) >= HANDSHAKE_PRIMS and set(routes.values()) == {"pure"}
    assert os.path.getsize(probe) > 0                # ucryptography was tried
    os.remove(probe)
    for _ in range(2):                               # a record wake, then a handshake
        out = dev.run()
        assert ran(out) in ([], ["random"]) and not os.path.exists(probe), out.stdout
    assert [how for how, _ in server.received] == ["m3", "record", "m3"]
    os.remove(os.path.join(dev.root, "cryptography.py"))
    out = dev.run()
    assert "crypto=pure" in lines(out, "wake")[0] and lines(out, "reply")
