# host_server.demo.summary: owns the numbers printed after a run and written to
# summary.json: bytes per message and in total, frames, time on air, duty-cycle waits,
# the time to the first authenticated application byte (modelled and wall), and the
# comparison on the same link profile (tools/linkemu cost(), no loss) of this run's
# airshake handshakes (first contact, and device 1's wake 3 by reference) with the
# patent's prior-art four-message flow (Fig. 1, both certificates over the air; sizes
# from host_server/competitors/priorart.py) and, when the bench code can run here, EDHOC method
# 3 (lakers) and TLS 1.3 (CPython ssl). Rule: every airshake size printed is measured
# from the frames the probe captured (air_sizes), none is derived or assumed.
from __future__ import annotations

import importlib
import statistics
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from airshake_tools.linkemu import cost
from airshake_tools.linkemu.model import FRAGMENT_HEADER
from host_server.demo.monitor import DeviceRun, Run
from host_server.demo.options import Options, Timing

RECORD_OVERHEAD = 17      # an airshake record: head, SID, seq, tag (PROTOCOL.md §5.2)


@dataclass
class Compared:
    name: str
    note: str
    messages: list[tuple[str, int]]   # (direction, bytes), the data message last
    handshake_bytes: int
    frames: int
    airtime_s: float
    duty_wait_s: float
    first_byte_s: float               # arrival of the first authenticated application byte


def _bench(name: str) -> ModuleType | None:
    """host_server/competitors/<name>.py, or None when it cannot run here (one missing
    dependency, lakers, costs only its own module)."""
    try:
        return importlib.import_module("host_server.competitors." + name)
    except Exception:
        return None


class Competitors:
    """Message sizes of the other protocols, measured by running them (in a thread, while
    the demo runs: about half a second)."""

    def __init__(self) -> None:
        self.sizes: dict[str, list[int]] = {}
        self.notes: dict[str, str] = {}
        self._thread = threading.Thread(target=self._measure, name="competitors",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def result(self, timeout: float = 20.0) -> dict[str, list[int]]:
        self._thread.join(timeout)
        return dict(self.sizes)

    def _measure(self) -> None:
        prior = _bench("priorart")
        if prior is not None:
            try:
                run = prior.run_prior_art()
                self.sizes["prior"] = [len(m) for m in run["messages"]]
                self.notes["prior"] = "C_B %d B and C_A %d B over the air" % (
                    run["c_b_der"], run["c_a_der"])
            except Exception:
                pass
        edhoc = _bench("edhoc")
        if edhoc is not None:
            try:
                self.sizes["edhoc_kid"] = edhoc.edhoc_messages("kid")
                self.sizes["edhoc_value"] = edhoc.edhoc_messages("value")
            except Exception:
                pass
        tls = _bench("tls13")
        if tls is not None:
            try:
                self.sizes["tls13"] = tls.tls13_messages("minimal")
            except Exception:
                pass


def _compare(name: str, note: str, sizes: list[int], data: int | None,
             profile: str) -> Compared:
    """sizes alternate up, down, up, ...; data (bytes) is an extra uplink after them
    (None: the application data rides in the last handshake message)."""
    messages = [("up" if n % 2 == 0 else "down", s) for n, s in enumerate(sizes)]
    if data is not None:
        messages.append(("up", data))
    c = cost(messages, profile)
    return Compared(name, note, messages, sum(sizes), c["frames"], c["airtime_s"],
                    c["duty_wait_s"], c["arrivals"][-1])


def comparison(profile: str, m1: int, m2: int, m3: int, record: int | None,
               others: dict[str, list[int]], notes: dict[str, str],
               c_b: str = "value", ref: list[int] | None = None) -> list[Compared]:
    """The airshake rows are this run's messages as they went on the air (ref: device
    1's later handshake, wake 3); the other protocols' data message is this run's record
    (wake 2) when there was one."""
    if record is None:
        record = RECORD_OVERHEAD + max(0, m3 - 9)
    rows = [_compare("airshake (this run)", "3 messages, the reading in m3; C_B by %s"
                     % ("reference" if c_b == "ref" else "value"), [m1, m2, m3], None,
                     profile)]
    if ref is not None:
        rows.append(_compare("airshake, C_B by reference", "this run's wake 3: every "
                             "later handshake", ref, None, profile))
    if "prior" in others:
        rows.append(_compare("prior art, Fig. 1", notes.get("prior", "") +
                             "; data after message 4", others["prior"], record, profile))
    if "edhoc_kid" in others:
        rows.append(_compare("EDHOC method 3, kid", "credentials by reference; data "
                             "after message_3", others["edhoc_kid"], record, profile))
    if "edhoc_value" in others:
        rows.append(_compare("EDHOC method 3, by value", "both certificates over the air",
                             others["edhoc_value"], record, profile))
    if "tls13" in others:
        rows.append(_compare("TLS 1.3, mutual auth", "minimal certificates; flights as "
                             "messages", others["tls13"], record, profile))
    return rows


def air_sizes(dev: DeviceRun, wakes: tuple[int, ...] = (1, 2)) -> dict[str, int]:
    """Each message's size from the frames the probe captured in these wakes: an
    unfragmented frame's length, or a fragmented message's payloads (every index seen at
    least once, fragment headers off). Keys as DeviceRun.sizes; a message never seen
    whole is left out."""
    sizes: dict[str, int] = {}
    parts: dict[tuple[int, str, str], dict[int, int]] = {}
    for f in dev.frames:
        if f.dropped or f.kind in ("?", "ack", "error") or f.wake not in wakes:
            continue
        key = f.kind
        if f.kind == "record":
            # B's confirming record in a handshake's wake; A's record in wake 2
            key = "first record" if f.wake != 2 and f.direction == "down" else \
                "record" if f.wake == 2 and f.direction == "up" else ""
        if not key or key in sizes:
            continue
        name, _, frag = f.label.partition(" ")
        if "/" in frag and name == f.kind:          # "m2 3/9": a fragment
            i, n = (int(x) for x in frag.split("/"))
            slot = (f.wake, f.direction, key)
            parts.setdefault(slot, {})[i] = f.size - FRAGMENT_HEADER
            if len(parts[slot]) == n:
                sizes[key] = sum(parts[slot].values())
        else:
            sizes[key] = f.size
    return sizes


def device_numbers(dev: DeviceRun) -> dict[str, Any]:
    frames = [f for f in dev.frames if not f.dropped]
    first_byte = None
    if dev.first_up_model is not None and dev.m3_arrive_model is not None:
        first_byte = dev.m3_arrive_model - dev.first_up_model
    wall = None
    if dev.first_up_real is not None and dev.m3_at_b_real is not None:
        wall = dev.m3_at_b_real - dev.first_up_real
    hs = [f for f in frames if f.wake == 1]
    return {
        "device": dev.index, "id": dev.id_hex, "c_b": dev.c_b, "sizes": air_sizes(dev),
        "sizes_later_handshake": air_sizes(dev, (3,)),
        "sizes_device_log": dict(dev.sizes),
        "confirmed": dev.confirmed, "replied": dev.replied, "noreply": dev.noreply,
        "frames": len(frames), "frames_handshake": len(hs),
        "frames_lost": sum(1 for f in frames if f.lost),
        "fragments": sum(1 for f in frames if " " in f.label and "/" in f.label
                         and not f.label.startswith("ack")),
        "acks": sum(1 for f in frames if f.label.startswith("ack")),
        "retransmissions": _retransmissions(dev),
        "bytes_on_air": sum(f.size for f in frames),
        "airtime_s": sum(f.airtime for f in frames),
        "duty_wait_s": sum(f.duty_wait for f in frames),
        "first_byte_modelled_s": first_byte, "first_byte_wall_s": wall,
        "reply_frames": _reply_frames(dev),
        "cs_lookup": dev.lookup, "b_handshake": dev.handshake, "cpu_ms": dev.cpu_ms,
    }


def _reply_frames(dev: DeviceRun) -> str:
    """What the air shows of B's answers to the wake-2 record: "lost", "delivered",
    or "none" (B sent none, or none before the demo stopped)."""
    down = [f for f in dev.frames if f.wake >= 2 and f.direction == "down"
            and f.kind == "record" and not f.dropped]
    if not down:
        return "none"
    return "delivered" if any(not f.lost for f in down) else "lost"


def _retransmissions(dev: DeviceRun) -> int:
    seen: set[str] = set()
    again = 0
    for step in dev.steps:
        if step.startswith("wake "):
            seen = set()                  # each wake sends its messages afresh
        elif step.startswith("send "):
            kind = step.split()[1]
            again += kind in seen
            seen.add(kind)
    return again


def collect(run: Run, opts: Options, timing: Timing, wall_s: float,
            competitors: dict[str, list[int]], notes: dict[str, str],
            gateway: dict[str, Any] | None = None) -> dict[str, Any]:
    """gateway: what host_server.gateway.demo_path's close() counted (--via gateway)."""
    devices = [device_numbers(d) for d in sorted(run.devices.values(), key=lambda d: d.index)]
    # the comparison needs one device that got m1, m2 and m3 on the air
    whole = [d for d in devices if {"m1", "m2", "m3"} <= set(d["sizes"])]
    rows = []
    if whole:
        z = whole[0]["sizes"]
        later = devices[0]["sizes_later_handshake"]
        ref = [later[k] for k in ("m1", "m2", "m3")] if {"m1", "m2", "m3"} <= set(later) \
            else None
        rows = comparison(opts.link, z["m1"], z["m2"], z["m3"], z.get("record"),
                          competitors, notes, whole[0]["c_b"], ref)
    return {
        "link": opts.link, "via": opts.via, "loss": opts.loss, "devices": opts.devices,
        "suite": opts.suite, "seed": opts.seed, "virtual": timing.virtual, "rto_s": timing.rto_s,
        "retries": timing.retries, "wall_s": wall_s, "per_device": devices,
        "relay": run.relay_summary, "unnamed_frames": run.unnamed,
        "comparison": [asdict(r) for r in rows], "gateway": gateway,
    }


def _gateway_lines(g: dict[str, Any]) -> list[str]:
    """--via gateway: what crossed the stand-in air, the gateways and the bridge."""
    air, bridge = g.get("air") or {}, g.get("bridge") or {}
    lines = ["  raw LoRa through GWMP gateways: the air carried %s frames / %s B up and %s "
             "frames / %s B down (IQ inverted)" % (air.get("frames_up", "?"),
                                                   air.get("bytes_up", "?"),
                                                   air.get("frames_down", "?"),
                                                   air.get("bytes_down", "?"))]
    for gw in sorted(g.get("gateways") or [], key=lambda x: str(x.get("eui"))):
        lines.append("    gateway %s: %s uplinks pushed (PUSH_DATA), %s downlinks "
                     "transmitted (PULL_RESP, %s TX_ACK without error)"
                     % (gw.get("eui"), gw.get("pushed", "?"), gw.get("transmitted", "?"),
                        gw.get("tx_acks", "?")))
    lines.append("    bridge (airshake gateway): %s uplinks to B, %s copies dropped (heard "
                 "by both gateways, or resent within its 1 s duplicate window), %s "
                 "downlinks sent"
                 % (bridge.get("uplinks", "?"), bridge.get("rx_duplicate", 0),
                    bridge.get("downlinks", "?")))
    return lines


def render(s: dict[str, Any]) -> list[str]:
    lines = []
    clock = ("virtual time: link times are modelled (airtime, duty cycle, windows); the "
             "endpoints ran at real speed" if s["virtual"]
             else "real time: the relay slept every modelled delay")
    via = s.get("via", "udp")
    lines.append("summary: %s%s, loss %.0f%%, %d device(s), suite %d, %s"
                 % (s["link"], "" if via == "udp" else " via " + via, s["loss"] * 100,
                    s["devices"], s["suite"], clock))
    d0 = s["per_device"][0]
    z = d0["sizes"]
    m2_note = "C_B by value (%s)" % ("first contact" if d0["c_b"] == "value" else d0["c_b"])
    if d0["c_b"] == "ref":
        m2_note = "C_B by reference"
    lines.append("  bytes per message (device 1, from the frames captured on the air; "
                 "application data included):")
    for key, note in (("m1", "A -> B  ID_A, time, G_X; no certificate"),
                      ("m2", "B -> A  " + m2_note), ("m3", "A -> B  the reading, encrypted"),
                      ("first record", "B -> A  confirms m3 (with B's reply)"),
                      ("record", "A -> B  wake 2: the reading on the saved session")):
        if key in z:
            lines.append("    %-13s %5d B   %s" % (key, z[key], note))
    hs = sum(z.get(k, 0) for k in ("m1", "m2", "m3"))
    lines.append("    %-13s %5d B   m1 + m2 + m3" % ("handshake", hs))
    later = d0.get("sizes_later_handshake", {})
    if {"m1", "m2", "m3"} <= set(later):
        lines.append("    %-13s %5d B   wake 3, a later handshake: %d + %d + %d, C_B by "
                     "reference%s" % ("later", sum(later[k] for k in ("m1", "m2", "m3")),
                                      later["m1"], later["m2"], later["m3"],
                                      ", then B's %d-byte confirming record"
                                      % later["first record"] if "first record" in later
                                      else ""))
    lines.append("    %-13s %5d B   everything on the air, fragment headers, acks and "
                 "retransmissions included" % ("on the air", d0["bytes_on_air"]))
    for d in s["per_device"]:
        fb = d["first_byte_modelled_s"]
        wall = d["first_byte_wall_s"]
        status = "confirmed" if d["confirmed"] else "NOT confirmed"
        if d["replied"]:
            status += ", record answered"
        elif d["noreply"] or d["confirmed"]:
            status += ", record unanswered: %s" % {
                "lost": "B's reply was lost on the air",
                "none": "no reply from B on the air",
                "delivered": "B's reply arrived after the device stopped waiting"}[
                    d["reply_frames"]]
        lines.append("  device %d (ID %s): %s" % (d["device"], d["id"], status))
        lines.append("    %d frames (%d lost, %d fragments, %d fragment acks, %d resent "
                     "messages), time on air %.2f s, duty-cycle waits %.1f s"
                     % (d["frames"], d["frames_lost"], d["fragments"], d["acks"],
                        d["retransmissions"], d["airtime_s"], d["duty_wait_s"]))
        lines.append("    first authenticated application byte (m3 at B): %s modelled, "
                     "%s wall" % (_secs(fb), _secs(wall)))
        lk, hs_line = d["cs_lookup"], d["b_handshake"]
        if hs_line:
            lines.append("    B: C_A %s, lookup %s, CS answered in %s"
                         % ({"cs": "fetched from the CS by ID", "mem": "from B's cache"}
                            .get(str(hs_line.get("cache")), str(hs_line.get("cache"))),
                            _ms(hs_line.get("cs_ms")), _ms(lk.get("ms")) if lk else "-"))
    if len(s["per_device"]) > 1:
        fbs = [d["first_byte_modelled_s"] for d in s["per_device"]
               if d["first_byte_modelled_s"] is not None]
        if fbs:
            lines.append("  devices together: first byte median %s, max %s (one virtual "
                         "clock for all: concurrent waits add up, so these are upper bounds)"
                         % (_secs(statistics.median(fbs)), _secs(max(fbs)))
                         if s["virtual"] else
                         "  devices together: first byte median %s, max %s"
                         % (_secs(statistics.median(fbs)), _secs(max(fbs))))
    if s.get("gateway"):
        lines += _gateway_lines(s["gateway"])
    lines.append("  the same exchanges on %s by the link model (cost(), no loss, no "
                 "processing time):" % s["link"])
    lines.append("    %-28s %-22s %6s %7s %9s %10s  %s" % (
        "protocol", "message bytes", "total", "frames", "on air", "1st byte", "note"))
    for c in s["comparison"]:
        sizes = "/".join(str(b) for _, b in c["messages"])
        lines.append("    %-28s %-22s %6d %7d %8.2fs %9.1fs  %s" % (
            c["name"], sizes, c["handshake_bytes"], c["frames"], c["airtime_s"],
            c["first_byte_s"], c["note"]))
    lines.append("  wall time of the whole demo: %.1f s" % s["wall_s"])
    return lines


def _secs(v: Any) -> str:
    return "-" if v is None else "%.2f s" % v


def _ms(v: Any) -> str:
    return "-" if not isinstance(v, (int, float)) else "%.1f ms" % v


def write_json(path: Path, s: dict[str, Any]) -> None:
    import json
    path.write_text(json.dumps(s, indent=1, default=str) + "\n")
