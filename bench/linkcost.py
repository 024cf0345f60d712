# bench.linkcost: time on air and wall time of a list of measured message sizes on the
# project's link model (airshake_tools.linkemu.cost), on every link setting the report
# shows, under each duty-cycle policy (airshake_tools.linkemu.dutycycle.POLICIES:
# per-frame off-time, ETSI EN 300 220's 1 % of an hour, LoRaMac-node's time credits).
# A LoRaWAN downlink of more fragments than the network holds for a class A device
# is paced by cost() itself (B hands a fragment over when one has gone out).
from __future__ import annotations

from typing import Any

from airshake_tools.linkemu import cost
from airshake_tools.linkemu.dutycycle import PER_FRAME, POLICIES

# (profile, sub-bands): the link settings every case is costed on
LINKS: tuple[tuple[str, int], ...] = (
    ("lora-sf7", 1), ("lora-sf7", 3), ("lora-sf12", 1), ("lora-sf12", 3),
    ("lorawan-eu868-dr0", 1), ("lorawan-eu868-dr0", 3))
FIELDS = ("frames", "airtime_s", "wall_s", "duty_wait_s", "pull_uplinks")
# the policies costed besides per-frame (whose results stay in a case's "links")
HOURLY_POLICIES = tuple(p for p in POLICIES if p != PER_FRAME)


def link_key(profile: str, subbands: int) -> str:
    return "%s/%dsb" % (profile, subbands)


def exchange_cost(messages: list[tuple[str, int]], profile: str,
                  subbands: int, duty_policy: str = PER_FRAME) -> dict[str, Any]:
    """frames, airtime_s, wall_s, duty_wait_s, pull_uplinks of a fault-free exchange."""
    out = cost(messages, profile, subbands, duty_policy)
    return {k: (round(out[k], 4) if isinstance(out[k], float) else out[k]) for k in FIELDS}


def all_links(messages: list[tuple[str, int]],
              duty_policy: str = PER_FRAME) -> dict[str, dict[str, Any]]:
    return {link_key(p, s): exchange_cost(messages, p, s, duty_policy) for p, s in LINKS}


def by_policy(messages: list[tuple[str, int]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{policy: all_links(messages, policy)} for every duty-cycle policy."""
    return {policy: all_links(messages, policy) for policy in POLICIES}
