"""airshake demo (core only): a device A and a server B handshake in one process.

Runs the real protocol core with the pyca backend on both sides, using the test CA and
keys of tests/vectors/handshake/fixtures.json, and prints every message with its size:
the first handshake (C_B by value), a second one (C_B by reference), one with 0-RTT data,
and a session uplink after "deep sleep". Usage: python tools/demo_handshake.py [--suite N]
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware/lib"), ROOT]   # run as a script: testkit/
os.chdir(ROOT)

from airshake import codec, events as ev  # noqa: E402
from airshake.crypto import load_backend  # noqa: E402
from airshake.session import Session  # noqa: E402
from testkit.hs_support import Pair, initiator  # noqa: E402

NAMES = {0: "m1", 1: "m2", 2: "m3", 3: "error", 4: "record"}


def show(title, pair, app_data):
    print("\n" + title)
    total = 0
    for who, data in pair.wire:
        arrow = "A -> B" if who == "A" else "B -> A"
        name = NAMES.get(codec.message_type(data), "?")
        print("  %s  %-6s %4d bytes" % (arrow, name, len(data)))
        if name in ("m1", "m2", "m3"):
            total += len(data)
    overhead = total - len(app_data)
    print("  m1+m2+m3: %d bytes = %d of handshake + %d of application data"
          % (total, overhead, len(app_data)))
    return overhead


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=int, default=0, choices=(0, 1, 2),
                        help="cipher suite: 0 X25519 (default), 1 RSA, 2 P-256")
    args = parser.parse_args()
    backend = load_backend("pyca")
    suite = args.suite

    first = Pair(backend, suite)
    first.run(b"reading=21.5C")
    show("1. first contact, C_B by value (A verifies it against its trust anchor)", first,
         b"reading=21.5C")

    ref = first.ini.server
    second = Pair(backend, suite, ini=initiator(backend, suite, server=ref), cfg=first.cfg)
    second.t += 60
    second.run(b"reading=21.6C")
    total = show("2. later handshake, C_B by reference", second, b"reading=21.6C")

    if suite != 1:
        third = Pair(backend, suite, ini=initiator(backend, suite, server=ref), cfg=first.cfg)
        third.t += 120
        third.run(b"reading=21.7C", early=True)
        show("3. 0-RTT: the reading rides in m1, authenticated on arrival", third,
             b"reading=21.7C")

    blob = second.ini.session.export()
    asleep = Session.from_bytes(backend, blob)
    record = asleep.seal(b"reading=21.8C")
    seq, data = second.res.session.open(record)
    print("\n4. after deep sleep: one record on the saved session, %d bytes for %d bytes "
          "of data (%d of overhead)" % (len(record), len(data), len(record) - len(data)))
    done = [e for e in second.b_events if isinstance(e, ev.HandshakeComplete)]
    assert done and second.ini.session.sid == second.res.session.sid
    print("\nC_A never crossed the air: B took ID_A=%s from m1 and looked C_A up itself."
          % done[0].id_a.hex())
    print("suite %d by reference: %d bytes of handshake (EDHOC method 3 with key ids: 101)"
          % (suite, total))


if __name__ == "__main__":
    main()
