# airshake.transcript: the handshake computations both roles share (docs/PROTOCOL.md §4).
# Rules: A and B call exactly these functions in the same order, so a change to the
# key schedule is made once. Inputs are the wire values; outputs are bytes.
from airshake import schedule

SIG2_CONTEXT = b"airshake v1 m2 signature"


def th1(backend, m1_prefix):
    """TH_1 = H(m1 up to G_X): keys the 0-RTT data and error references."""
    return backend.sha256(m1_prefix)


def error_ref(backend, m1, th1, id_len):
    """How an error message names the m1 it answers (§6): H(m1 as sent, up to G_X), its
    first REF_LEN bytes: for the long form that is TH_1's (no new hash). Taken from the
    wire, not from the time B resolved, so A matches it even when B's clock reads the
    short m1's time differently (then it is STALE_TIME that A must be able to take).
    Computed only when an error is sent or received, never on the handshake's path."""
    from airshake.codec import REF_LEN, is_short_m1, m1_prefix_len
    if not is_short_m1(m1):
        return th1[:REF_LEN]
    return backend.sha256(m1[:m1_prefix_len(id_len, True)])[:REF_LEN]


def th2(backend, m1_hash, m2_head_byte, g_y, time_bytes, cb_hash, spki_hash_a,
        pms_ct=b""):
    """TH_2 = H(H(m1) || head || G_Y || [time] || H(C_B) || H(SPKI_A) [|| H(C_PMS)])."""
    parts = [m2_head_byte, g_y, time_bytes, cb_hash, spki_hash_a]
    if pms_ct:
        parts.append(backend.sha256(pms_ct))
    return schedule.chain(backend, m1_hash, *parts)


class Keys3:
    """What both sides know once m2 is settled: TH_3 and the m3 key and IV."""

    def __init__(self, backend, prk4e3m, th3):
        self.prk4e3m = prk4e3m
        self.th3 = th3
        self.k3, self.iv3 = schedule.m3_keys(backend, prk4e3m, th3)


def after_mac2(backend, th2, prk3e2m, mac2, se):
    """Suites 0 and 2: MAC_2 is settled; mix in se."""
    th3 = schedule.chain(backend, th2, mac2)
    return Keys3(backend, schedule.prk_4e3m(backend, prk3e2m, se), th3)


def after_sig2(backend, th2, ee, sig2, pms):
    """Suite 1: SIG_2 is settled; mix in the pre-master secret."""
    th3 = schedule.chain(backend, th2, sig2)
    prk2e = schedule.prk_2e(backend, th2, ee)
    return Keys3(backend, schedule.prk_4e3m(backend, prk2e, pms), th3)


def mac2_keys(backend, th2, ee, es, mac_len):
    """Suites 0 and 2: (PRK_3e2m, MAC_2)."""
    prk3e2m = schedule.prk_3e2m(backend, schedule.prk_2e(backend, th2, ee), es)
    return prk3e2m, schedule.mac_2(backend, prk3e2m, th2, mac_len)


def session_secrets(backend, keys3, m3):
    """TH_4 = H(TH_3 || m3); PRK_out; then (secret A->B, secret B->A, sid)."""
    th4 = schedule.chain(backend, keys3.th3, m3)
    return schedule.session_secrets(backend, schedule.prk_out(backend, keys3.prk4e3m, th4))
