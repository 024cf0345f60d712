# bench.linkcost: time on air and wall time of a list of measured message sizes on the
# project's link model (airshake_tools.linkemu). Owns one thing besides calling
# linkemu.cost(): LoRaWAN class A downlinks that need more fragments than the network
# holds for a device (model.HOLD_LIMIT). cost() hands every fragment of a message to
# the link at once, so on LoRaWAN the held-downlink queue overflows, fragments are
# dropped without a retransmission and cost() reports a shorter exchange than the one
# that delivers the message. paced_cost() is cost() with B handing a downlink fragment
# over only when the previous one has arrived (what flow control over a class A link
# amounts to); for every exchange where cost() drops nothing it gives cost()'s result
# exactly, and exchange_cost() checks that on every call.
from __future__ import annotations

from typing import Any

from airshake_tools.linkemu import Link, cost, fragment_sizes, get_profile

from bench.common import BenchFailure

# (profile, sub-bands): the link settings every case is costed on
LINKS: tuple[tuple[str, int], ...] = (
    ("lora-sf7", 1), ("lora-sf7", 3), ("lora-sf12", 1), ("lora-sf12", 3),
    ("lorawan-eu868-dr0", 1), ("lorawan-eu868-dr0", 3))


def link_key(profile: str, subbands: int) -> str:
    return "%s/%dsb" % (profile, subbands)


def _run(messages: list[tuple[str, int]], profile: str, subbands: int,
         paced: bool) -> tuple[dict[str, Any], int]:
    """cost()'s loop (tools/linkemu/model.py), optionally paced; also returns the
    number of frames the link dropped (held-downlink queue overflow)."""
    link = Link(profile, subbands=subbands)
    prof = get_profile(profile)
    t = 0.0
    pulls = 0

    def pull(done: float) -> float:
        nonlocal pulls
        while link.pending_downlinks:
            pulls += 1
            for d in link.send("up", b"", done):
                if d.direction == "down":
                    done = max(done, d.at)
        return done

    for direction, size in messages:
        done = t
        frames = fragment_sizes(size, prof.mtu)
        if paced and direction == "down" and prof.class_a:
            for frame_size in frames:
                for d in link.send(direction, bytes(frame_size), done):
                    if d.direction == direction:
                        done = max(done, d.at)
                done = pull(done)
        else:
            for frame_size in frames:
                for d in link.send(direction, bytes(frame_size), t):
                    if d.direction == direction:
                        done = max(done, d.at)
            if direction == "down":
                done = pull(done)
        t = done
    sent = [e for e in link.log if not e.get("dropped")]
    dropped = len(link.log) - len(sent)
    return {
        "frames": len(sent),
        "airtime_s": sum(e["airtime_s"] for e in sent),
        "wall_s": t,
        "duty_wait_s": sum(e["duty_wait_s"] for e in sent),
        "pull_uplinks": pulls,
    }, dropped


def exchange_cost(messages: list[tuple[str, int]], profile: str,
                  subbands: int) -> dict[str, Any]:
    """frames, airtime_s, wall_s, duty_wait_s, pull_uplinks of a fault-free exchange, plus
    model: "linkemu.cost" when cost() delivers every fragment (its numbers, checked
    against this module's replica), else "paced" with cost_dropped_frames = how many
    fragments cost() would have silently dropped."""
    reference = cost(messages, profile, subbands)
    replica, dropped = _run(messages, profile, subbands, paced=False)
    same = (reference["frames"] == replica["frames"] + dropped
            and abs(reference["wall_s"] - replica["wall_s"]) < 1e-9
            and abs(reference["airtime_s"] - replica["airtime_s"]) < 1e-9)
    if not same:
        raise BenchFailure("bench/linkcost.py no longer mirrors linkemu.cost() on %s: "
                           "update _run()" % link_key(profile, subbands))
    if dropped == 0:
        out = {k: reference[k] for k in ("frames", "airtime_s", "wall_s", "duty_wait_s",
                                         "pull_uplinks")}
        out["model"] = "linkemu.cost"
        return _rounded(out)
    paced, lost = _run(messages, profile, subbands, paced=True)
    if lost:
        raise BenchFailure("paced exchange on %s still drops %d frames"
                           % (link_key(profile, subbands), lost))
    paced["model"] = "paced"
    paced["cost_dropped_frames"] = dropped
    return _rounded(paced)


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def all_links(messages: list[tuple[str, int]]) -> dict[str, dict[str, Any]]:
    return {link_key(p, s): exchange_cost(messages, p, s) for p, s in LINKS}
