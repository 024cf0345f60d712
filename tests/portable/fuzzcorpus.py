# tests/portable/fuzzcorpus.py: a deterministic mutation corpus for the decoders and the
# receive paths, identical on CPython and MicroPython (its own LCG, not `random`), so
# the same inputs are fed to the host and to the device-side code.
# Targets and the invariant are in TARGETS / check(); tests/host/test_fuzz.py drives the
# same targets with Hypothesis, and `make fuzz` runs both much longer.
from airshake import c509, codec, fragments, der, x509
from airshake.errors import AirshakeError
from airshake.session import Session


class Lcg:
    """64-bit LCG (Knuth MMIX constants): reproducible on every runtime."""

    def __init__(self, seed):
        self.state = (seed * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF

    def next(self, bound):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) \
            & 0xFFFFFFFFFFFFFFFF
        return (self.state >> 33) % bound


def mutate(rng, data):
    """One to four mutations: bit flip, byte set, truncate, extend, splice, duplicate."""
    out = bytearray(data)
    for _ in range(1 + rng.next(4)):
        op = rng.next(6)
        if op == 0 and out:
            i = rng.next(len(out))
            out[i] ^= 1 << rng.next(8)
        elif op == 1 and out:
            out[rng.next(len(out))] = rng.next(256)
        elif op == 2 and out:
            out = out[:rng.next(len(out))]     # MicroPython: no slice deletion
        elif op == 3:
            out.extend(bytes(rng.next(256) for _ in range(1 + rng.next(8))))
        elif op == 4 and len(out) > 2:
            i, j = rng.next(len(out)), rng.next(len(out))
            out = out[:i] + out[j:j + 1 + rng.next(8)] + out[i:]
        elif op == 5 and out:
            out[0] = (out[0] & 0x1F) | (rng.next(8) << 5)   # another message type
    return bytes(out)


def corpus(seeds, n, seed=1):
    """n mutated inputs from the list of valid seed messages."""
    rng = Lcg(seed)
    for _ in range(n):
        yield mutate(rng, seeds[rng.next(len(seeds))])


def check(fn, data):
    """The invariant: remote input yields a value or an AirshakeError, nothing else.
    Returns True if fn accepted the input."""
    try:
        fn(data)
        return True
    except AirshakeError:
        return False


def check_role(role, data, now):
    """The invariant of the roles (Initiator, Responder): receive() never raises for
    remote input; what it refuses is a Dropped or Refused event carrying an
    AirshakeError. Returns True if the role reported no refusal."""
    role.receive(data, now)
    accepted = True
    while True:
        e = role.next_event()
        if e is None:
            return accepted
        error = getattr(e, "error", None)
        if error is not None:
            if not isinstance(error, AirshakeError):
                raise AssertionError("refusal without a typed error: %r" % (e,))
            accepted = False


def decoder_targets(id_len=8):
    link = fragments.FragmentLink(51)
    return {
        "m1": lambda d: codec.decode_m1(d, id_len),
        "m2": lambda d: codec.decode_m2(d, 0, lambda cert: codec.MAC_LEN),
        "m2_rsa": lambda d: codec.decode_m2(d, 256, lambda cert: 256),
        "m3": codec.decode_m3,
        "error": codec.decode_error,
        "record": codec.decode_record,
        "fragment": lambda d: link.incoming(d, 0),
        "der": lambda d: der.read_tlv(d, 0),
        "x509": x509.parse_certificate,
        "c509": c509.decode,
    }


def import_target(backend):
    return lambda d: Session.from_bytes(backend, d)
