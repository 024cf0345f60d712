# bench.report: turns the results of one run into bench/results/latest.json (everything
# measured, with the checks each measurement passed), latest.md (the tables, the goals
# met or not with their numbers, how each number was measured) and the PNG plots
# (bench.plots). Owns the goal definitions.
from __future__ import annotations

import json
import os
from typing import Any

from bench import plots
from bench.linkcost import LINKS, link_key

KIB = 1024
GOALS = {
    "bytes": 96,            # suite 0, C_B by reference (EDHOC method 3 with kids is 101)
    "by_value_bytes": 300,  # C_B by value (EDHOC method 3 with CCS by value is 306)
    "server_ratio": 3.0,    # B warm: handshakes per CPU-second over TLS 1.3 mutual's
    "server_ratio_cold": 1.0,  # B cold (every C_A from the CS) over TLS 1.3 mutual's
    "held_session_bytes": 1024,  # B's memory per held session at 10^6 sessions
    "device_cpu_ms": 25.0,  # per handshake, 64-bit unix binary, median
    "twin_ucrypto_s2_cpu_ms": 20.0,  # suite 2 on the twin with ucryptography
    "session_overhead": 20,
}
# the air rows compare airshake's by-reference exchange with EDHOC's (key ids)
AIR_OURS, AIR_EDHOC = "airshake-s0-ref", "edhoc-m3-kid"
SF12, DR0 = "lora-sf12/1sb", "lorawan-eu868-dr0/1sb"
POLICY_NAMES = {"per-frame": "per-frame off-time (99x)", "etsi-hour": "ETSI 1 % of an hour",
                "lmn-credits": "LoRaMac-node credits"}
POLICY_CASES = ("airshake-s0-ref", "airshake-s0-ref-id5", "airshake-s0-value", "edhoc-m3-kid",
                "edhoc-m3-value", "tls13-mutual-minimal", "tls13-mutual-typical")


def device_suites(device: dict[str, Any]) -> list[str]:
    return sorted((k for k in device if k.isdigit()), key=lambda s: (s == "1", s))


def _kib(n: float) -> str:
    return "%.1f KiB" % (n / KIB)


def _wake(w: str) -> str:
    return "first boot" if w == "first" else "later wake (self-tests recorded)"


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def goal(name: str, target: str, measured: str, met: bool | None, note: str = "") -> None:
        out.append({"goal": name, "target": target, "measured": measured, "met": met,
                    "note": note})

    air = results.get("air")
    if air:
        ours, edhoc = air[AIR_OURS], air[AIR_EDHOC]
        total = ours["total"]
        goal("Bytes: suite 0, C_B by reference", "<= %d B" % GOALS["bytes"],
             "%d B (%s); EDHOC method 3 with key ids %d B (%s)" % (
                 total, "+".join(map(str, ours["messages"])), edhoc["total"],
                 "+".join(map(str, edhoc["messages"]))),
             total <= GOALS["bytes"],
             "m1 is the short m1 (the device holds C_B with a confirmed clock); B's first "
             "record (%d B) confirms m3 and is not counted" % ours["b_first_record_bytes"])
        for link, label in ((SF12, "SF12 raw LoRa"), (DR0, "LoRaWAN DR0")):
            a, e = ours["links"][link]["airtime_s"], edhoc["links"][link]["airtime_s"]
            goal("Time on air vs EDHOC, %s, suite 0 by reference" % label,
                 "< EDHOC's %.3f s" % e, "%.3f s (%d frames)" % (a, ours["links"][link]["frames"]),
                 a < e, "whole exchange m1+m2+m3, link model %s" % link)
        # the default 8-byte ID_A, then 5-byte IDs (a deployment setting: --id-len 5 at the
        # CS, B and the devices; the CS refuses an enrolment whose ID collides)
        short = air.get(AIR_OURS + "-id5")
        for case, ids in ((ours, "8-byte ID_A (default)"), (short, "5-byte ID_A (--id-len 5)")):
            if case is None:
                continue
            m1 = "m1 %d B" % case["messages"][0]
            a, e = case["links"][SF12]["wall_s"], edhoc["links"][SF12]["wall_s"]
            goal("Wall time vs EDHOC, SF12, 1 sub-band, per-frame off-time, %s" % ids,
                 "<= EDHOC's %.1f s" % e, "%.1f s (%s)" % (a, m1), a <= e,
                 "the off-time after m1 (99 x its time on air) dominates; m1 of 36-40 B "
                 "takes as many symbols as EDHOC's 37 B at SF12")
            a, e = case["links"][DR0]["wall_s"], edhoc["links"][DR0]["wall_s"]
            goal("Wall time vs EDHOC, LoRaWAN DR0, 1 sub-band, per-frame off-time, %s" % ids,
                 "<= EDHOC's %.1f s" % e, "%.1f s (%+.1f s, %s)" % (a, a - e, m1), a <= e,
                 "13 B of LoRaWAN framing: a tie needs m1 <= 37 B, and ID_A, the timestamp "
                 "and G_X (32 B) leave at least 35 + id_len")
        val, eval_ = air["airshake-s0-value"], air["edhoc-m3-value"]
        goal("Bytes: suite 0, C_B by value", "<= %d B" % GOALS["by_value_bytes"],
             "%d B (%s); EDHOC by value %d B" % (val["total"], "+".join(map(str, val["messages"])),
                                                 eval_["total"]),
             val["total"] <= GOALS["by_value_bytes"],
             "m2 carries C_B as C509 (PROTOCOL.md section 3.2); the same certificate is %d B "
             "of X.509 DER in the CS" % val["c_b_der_bytes"])
        rec = air["airshake-session-record"]["overhead_bytes"]
        goal("Session uplink overhead", "<= %d B" % GOALS["session_overhead"], "%d B" % rec,
             rec <= GOALS["session_overhead"])
    server = results.get("server")
    if server and "ratio" in server:
        tls = server["tls13_minimal"]
        tls_sp = tls.get("spread_hs_per_server_cpu_s")
        for key, ratio, target, label in (
                ("airshake_warm", server["ratio"], GOALS["server_ratio"], "warm"),
                ("airshake_cold", server["ratio_cold"], GOALS["server_ratio_cold"], "cold")):
            b = server[key]
            b_sp = b.get("spread_hs_per_b_cpu_s")
            spread = ""
            if b_sp and tls_sp:
                spread = "; windows %.2f-%.2fx (B %.0f-%.0f, TLS %.0f-%.0f)" % (
                    b_sp[0] / tls_sp[1], b_sp[1] / tls_sp[0], b_sp[0], b_sp[1], tls_sp[0],
                    tls_sp[1])
            goal("Server: B %s vs TLS 1.3 per core" % label, ">= %.0fx" % target,
                 "%.2fx (median of %d windows: %.0f / %.0f hs per CPU-s)%s" % (
                     ratio, len(b["windows"]), b["hs_per_b_cpu_s"],
                     tls["hs_per_server_cpu_s"], spread), ratio >= target,
                 "TLS 1.3 mutual with Ed25519 certificates (the faster TLS); " + (
                     "warm: C_A in B's cache; vs RSA-2048 certificates %.2fx"
                     % server["ratio_vs_typical"] if label == "warm" else
                     "cold: every C_A from the CS over HTTP; B and CS CPU together: %.0f hs "
                     "per CPU-s" % b["hs_per_b_plus_cs_cpu_s"]))
    held = (results.get("scaling") or {}).get("held_sessions")
    if held:
        per = held["rss_bytes_per_session"]
        goal("Server: B memory per held session", "<= %d B (1 KB) at 10^6 sessions"
             % GOALS["held_session_bytes"], "%d B (VmRSS over %d sessions: %d MiB at 10^6)"
             % (per, held["sessions"], held["projected_1e6_mib"]),
             per <= GOALS["held_session_bytes"],
             "bench/server_memory.py --rss-sessions: a fresh process's SessionTable with its "
             "entries; tracemalloc: %d B per session" % held["session_bytes_tracemalloc"])
    device = results.get("device")
    if device:
        for s in device_suites(device):
            d = device[s]
            runs = d.get("cpu_ms_runs") or [d["cpu_ms"]]
            goal("Device CPU per handshake, suite %s (64-bit, median)" % s,
                 "<= %.0f ms" % GOALS["device_cpu_ms"],
                 "%.2f ms (runs %.2f-%.2f)" % (d["cpu_ms"], min(runs), max(runs)),
                 d["cpu_ms"] <= GOALS["device_cpu_ms"],
                 "unix binary, pure backend, .mpy; not a target suite" if s == "1" else
                 "unix binary, pure backend, .mpy")
    twin = results.get("twin")
    if twin:
        skipped = twin.get("skipped", {})
        if "pure" in skipped:
            for build, suite, kib in (("frozen", 0, 24), ("mpy", 0, 64), ("frozen", 2, 32)):
                goal("Device peak heap, twin, %s, suite %d" % (build, suite), "<= %d KiB" % kib,
                     "not measured", None, skipped["pure"])
        for row in twin.get("memory", []):
            if row["target_bytes"] is None:
                continue
            goal("Device peak heap, twin, %s, suite %d, %s" % (
                     "frozen" if row["build"] == "frozen" else "firmware as .mpy",
                     row["suite"], _wake(row["wake"])),
                 "<= %d KiB" % (row["target_bytes"] // KIB),
                 "%s (%d bisection%s: %s)" % (
                     _kib(row["heap_bytes"]), len(row["bisections"]),
                     "s" if len(row["bisections"]) > 1 else "",
                     ", ".join("%.1f" % (b / KIB) for b in row["bisections"])),
                 row["heap_bytes"] <= row["target_bytes"],
                 "whole process, pure backend, smallest -X heapsize passing %d of %d"
                 % (row["tries"], row["tries"]))
        rows = {(r["suite"], r["backend"]): r for r in twin.get("backends", [])}
        u2 = rows.get((2, "ucrypto"))
        goal("Twin CPU per handshake, suite 2, ucryptography",
             "<= %.0f ms" % GOALS["twin_ucrypto_s2_cpu_ms"],
             "%.2f ms (native %.2f, Python %.2f)" % (u2["cpu_ms"], u2["native_ms"],
                                                     u2["python_ms"]) if u2 else "not measured",
             u2["cpu_ms"] <= GOALS["twin_ucrypto_s2_cpu_ms"] if u2 else None,
             "32-bit twin, firmware frozen, the composite backend" if u2 else
             skipped.get("ucrypto", "no ucrypto row"))
        for suite, kib in ((0, 24), (2, 32)):
            u = rows.get((suite, "ucrypto"))
            goal("Device peak heap, twin, frozen, suite %d, ucryptography" % suite,
                 "<= %d KiB" % kib, _kib(u["heap_total"]) if u else "not measured",
                 u["heap_total"] <= kib * KIB if u else None,
                 "whole process with the backend shim (pure: %s)" % _kib(
                     rows[(suite, "pure")]["heap_total"]) if u and (suite, "pure") in rows
                 else skipped.get("ucrypto", ""))
    return out


def _fmt_s(v: float) -> str:
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def _yes(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def markdown(results: dict[str, Any]) -> str:
    run = results["run"]
    lines = ["# airshake benchmark results", "",
             "Written by `make bench` (`python -m bench.run%s`). Every number below was "
             "measured in this one run by running the real implementations; nothing is "
             "quoted." % (" --quick" if run["quick"] else ""), "",
             "- run: %s UTC, wall time **%.0f s**, commit `%s`%s" % (
                 run["started_utc"], run["wall_s"], run["git_commit"][:12],
                 " (uncommitted changes)" if run["git_dirty"] else ""),
             "- machine: %s, %d CPUs; load average %.2f at the start, %.2f at the end "
             "(other work on the machine shows in wall-clock rates, less in per-CPU-second "
             "ones)" % (run["host"]["cpu"], run["host"]["cpus"], run["loadavg_start"],
                        run["loadavg_end"]),
             "- versions: " + ", ".join("%s %s" % kv for kv in run["versions"].items()),
             ""]
    lines += ["## Goals", "", "| goal | target | measured | result | note |",
              "|---|---|---|---|---|"]
    for g in results["goals"]:
        lines.append("| %s | %s | %s | %s | %s |" % (g["goal"], g["target"], g["measured"],
                                                   _yes(g["met"]), g["note"]))
    lines.append("")
    if "air" in results:
        lines += _air_md(results["air"])
    if "server" in results:
        lines += _server_md(results["server"])
    if "device" in results:
        lines += _device_md(results["device"])
    if "twin" in results:
        lines += _twin_md(results["twin"], results.get("device"))
    if "scaling" in results:
        lines += _scaling_md(results["scaling"])
    lines += ["## Plots", ""] + ["![%s](%s)" % (f[:-4], f) for f in results.get("plots", [])]
    return "\n".join(lines) + "\n"


def _air_md(air: dict[str, Any]) -> list[str]:
    width = max(len(c["messages"]) for c in air.values())
    out = ["## 1. Over the air", "",
           "Bytes per message, from the bytes each implementation produced in this run "
           "(airshake: the core, both roles in-process; EDHOC: lakers-python; TLS 1.3: "
           "CPython ssl records; prior art: the WO 99/25093 Fig. 1 model in "
           "`host_server/competitors/priorart.py`). No application data.", "",
           "| case | protocol | " + " | ".join("msg %d" % (i + 1) for i in range(width))
           + " | total |", "|---|---|" + "---:|" * (width + 1)]
    for name, c in air.items():
        cells = [str(m) for m in c["messages"]] + [""] * (width - len(c["messages"]))
        out.append("| %s | %s | %s | **%d** |" % (name, c["protocol"], " | ".join(cells),
                                                  c["total"]))
    out += ["", "Link model (`airshake_tools.linkemu`, fault-free; messages larger than the "
            "MTU cut into airshake fragments of 4 header bytes): frames / time on air / "
            "duty-cycle-bound wall time of the whole exchange, each message sent when the "
            "previous one has arrived. `lora-sf*` = raw LoRa at 868.1 MHz, 1 % duty cycle "
            "per transmitter; `lorawan-eu868-dr0` = LoRaWAN class A, SF12, 51-byte payloads "
            "+ 13 bytes of MAC framing, downlink fragments pulled by empty uplinks (no more "
            "handed to the network than it holds for the device). 1sb / 3sb "
            "= one or three EU868 sub-bands usable.", "",
            "| case | " + " | ".join("%s frames | airtime s | wall s" % link_key(p, s)
                                    for p, s in LINKS) + " |",
            "|---|" + "---:|" * (3 * len(LINKS))]
    for name, c in air.items():
        cells = []
        for p, s in LINKS:
            x = c["links"][link_key(p, s)]
            cells += [str(x["frames"]),
                      _fmt_s(x["airtime_s"]), _fmt_s(x["wall_s"])]
        out.append("| %s | %s |" % (name, " | ".join(cells)))
    out += ["", "Compact: total bytes and wall time at SF12 and on LoRaWAN DR0:", "",
            "| case | total B | SF12 1sb wall s | SF12 3sb wall s | DR0 1sb wall s | "
            "DR0 3sb wall s | with B's first record: total B, SF12 1sb wall s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in air.items():
        lk = c["links"]
        conf = ("%d, %s" % (c["total_with_confirmation"],
                            _fmt_s(c["links_with_confirmation"]["lora-sf12/1sb"]["wall_s"]))
                if "total_with_confirmation" in c else "")
        out.append("| %s | %d | %s | %s | %s | %s | %s |" % (
            name, c["total"], _fmt_s(lk["lora-sf12/1sb"]["wall_s"]),
            _fmt_s(lk["lora-sf12/3sb"]["wall_s"]),
            _fmt_s(lk["lorawan-eu868-dr0/1sb"]["wall_s"]),
            _fmt_s(lk["lorawan-eu868-dr0/3sb"]["wall_s"]), conf))
    out += ["", "Notes:", "",
            "- Only bytes of the handshake protocols themselves: no TCP/IP for TLS, no CoAP "
            "for EDHOC, no LoRaWAN join. The TLS 1.3 flights are OpenSSL's records "
            "(middlebox compatibility on, as shipped; no session tickets).",
            "- airshake's m3 is confirmed by B's first record (the application's reply, or "
            "an empty %d-byte record); A retransmits m3 until it arrives. EDHOC without "
            "message_4 and TLS have no such confirmation in their counts either; the last "
            "column shows airshake's exchange with it." % air["airshake-s0-ref"][
                "b_first_record_bytes"],
            "- airshake-s0-0rtt: m1 carries 0-RTT data (here 0 bytes: %d bytes of overhead "
            "in m1); the data reaches B after the first message." % air[
                "airshake-s0-0rtt"]["m1_overhead_bytes"],
            "- With one sub-band and the per-frame off-time, the wall time is set by the "
            "device's duty-cycle pause after m1 (99 x its time on air), so a smaller first "
            "message matters more than a smaller total."]
    return out + [""] + _policy_md(air)


def _policy_md(air: dict[str, Any]) -> list[str]:
    """Wall time of each exchange under each duty-cycle policy, SF12 and DR0, 1 sub-band."""
    first = next(iter(air.values())).get("links_by_policy")
    if not first:
        return []
    policies = list(first)
    out = ["Duty-cycle policies (`airshake_tools.linkemu.dutycycle`): wall time in seconds "
           "of the whole exchange with one sub-band under each policy: %s. Time on air "
           "does not depend on the policy." % "; ".join(
               "`%s` = %s" % (p, POLICY_NAMES.get(p, p)) for p in policies), "",
           "| case | time on air SF12 s | " + " | ".join(
               "SF12 %s" % p for p in policies) + " | time on air DR0 s | " + " | ".join(
               "DR0 %s" % p for p in policies) + " |",
           "|---|" + "---:|" * (2 * len(policies) + 2)]
    for name in POLICY_CASES + tuple(n for n in air if n not in POLICY_CASES):
        c = air.get(name)
        if not c or "links_by_policy" not in c:
            continue
        cells = []
        for link in (SF12, DR0):
            cells.append(_fmt_s(c["links"][link]["airtime_s"]))
            cells += [_fmt_s(c["links_by_policy"][p][link]["wall_s"]) for p in policies]
        out.append("| %s | %s |" % (name, " | ".join(cells)))
    out += ["", "- per-frame: after every frame the transmitter keeps off for 99 x its time on "
            "air (the link model's old rule). etsi-hour: ETSI EN 300 220's 1 % measured over "
            "a sliding hour, so a short burst is legal. lmn-credits: LoRaMac-node's (4.5 on) "
            "time credits over an hour. The device's raw-LoRa scheduler uses etsi-hour.", ""]
    return out


def _server_md(server: dict[str, Any]) -> list[str]:
    rows = [("airshake B, suite 0, warm cache", server["airshake_warm"], "hs_per_b_cpu_s"),
            ("airshake B, suite 0, cold: every C_A from the CS over HTTP",
             server["airshake_cold"], "hs_per_b_cpu_s")]
    if "airshake_s2_warm" in server:
        rows.insert(1, ("airshake B, suite 2, warm cache", server["airshake_s2_warm"],
                        "hs_per_b_cpu_s"))
    rows += [("TLS 1.3 mutual, Ed25519 certificates (CPython ssl, loopback)",
              server["tls13_minimal"], "hs_per_server_cpu_s"),
             ("TLS 1.3 mutual, RSA-2048 certificates (CPython ssl, loopback)",
              server["tls13_typical"], "hs_per_server_cpu_s")]
    out = ["## 2. Server", "",
           "| server | handshakes per CPU-second (per core) | handshakes per wall second | "
           "windows |", "|---|---:|---:|---|"]
    for label, d, key in rows:
        out.append("| %s | **%.0f** | %.0f | %d x %.0f s |" % (
            label, d[key], d["hs_per_s"], len(d["windows"]),
            d["windows"][0].get("seconds", d["windows"][0].get("server_wall_s", 0))))
    lg = server["loadgen_reference"]
    cold = server["airshake_cold"]
    out += ["", "**Ratio** B warm / TLS 1.3 (Ed25519): **%.2f**; cold / TLS: %.2f; warm / TLS "
            "(RSA-2048): %.2f." % (server["ratio"], server["ratio_cold"],
                                   server["ratio_vs_typical"]), "",
            "- Per core = completed handshakes / CPU-seconds of the server process in the "
            "window (B: `/proc/PID/stat` utime+stime of all its threads; TLS: the server "
            "process's `time.process_time()`, pinned to one CPU), median of the windows. "
            "Clients run in other processes and are not counted.",
            "- airshake: B as `airshake server` with a real `airshake cs serve`, 32 "
            "concurrent core Initiators over UDP (C_B by reference), %d enrolled devices. A "
            "handshake counts when B's first record reaches the client (both hold the same "
            "session keys); B's metrics confirm each window (warm: no CS request, a MEM hit "
            "per handshake; cold: a CS lookup per handshake)." % server["airshake_warm"][
                "devices"],
            "- Cold counts B's CPU only; B and the CS together: %.0f handshakes per "
            "CPU-second." % cold["hs_per_b_plus_cs_cpu_s"],
            "- Cross-check, `host_server.server_b.loadgen` itself (warm, %d devices, %.0f s): %.0f "
            "handshakes per B CPU-second." % (lg["devices"], lg["seconds"],
                                              lg["handshakes_per_b_cpu_s"] or 0),
            "- For reference, lakers-python's EDHOC responder in memory (no network, no "
            "server): %.0f handshakes per CPU-second." % server[
                "edhoc_responder_in_memory_hs_per_cpu_s"], ""]
    return out


def _device_md(device: dict[str, Any]) -> list[str]:
    fw = device["firmware_mpy_bytes"]
    out = ["## 3. Device", "",
           "MicroPython unix binary (%s), pure backend, C_B by reference, the firmware "
           "tree compiled with mpy-cross -O2 as a device loads it "
           "(`bench/device_cost.py`, `testkit/handshake_client.py`)." % device[
               "micropython"], "",
           "| suite | CPU per handshake, ms (median) | fastest run | same, 2 MiB heap | "
           "peak heap (whole process), "
           "B | resident before the handshake, B | handshake completes in (free heap), B | "
           "ESP32 estimate, ms |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in device_suites(device):
        d = device[s]
        out.append("| %s | **%.2f** | %.2f | %.2f | %d | %d | %d | %d - %d |" % (
            s, d["cpu_ms"], d["cpu_ms_min"], d["cpu_ms_with_2mib_heap"], d["peak_heap_bytes"],
            d["resident_bytes"], d["handshake_heap_bytes"], d["esp32_estimate_ms"][0],
            d["esp32_estimate_ms"][1]))
    first = device[device_suites(device)[0]]
    out += ["",
            "- CPU: time inside the core's calls for one handshake (median of %d runs, "
            "`time.ticks_us`), after a warm-up of the one-time costs, at `-X heapsize=%d` "
            "(device_cost's setting). ticks_us is elapsed time, so other load on the "
            "machine adds to it (see the fastest run). The same runs with a 2 MiB heap "
            "differ, for P-256 markedly: big-integer code that allocates walks more memory "
            "between collections (cache misses); an ESP32's heap is smaller still."
            % (first["runs"], first["cpu_heap_bytes"]),
            "- Peak heap = device_cost's heap_total: the smallest `-X heapsize` with which "
            "the process boots (imports, backend self-tests, keys) and completes a "
            "handshake and a record each way, 3 runs of 3. It is the whole process and "
            "includes about %.0f KiB of .mpy code loaded into RAM (the core is %d bytes of "
            ".mpy); a firmware with frozen modules keeps that code in flash. heap_boot (the "
            "same stopped before the handshake) equals it within a few hundred bytes: the "
            "boot, not the handshake, sets the peak." % (device["code_in_ram_bytes"] / KIB,
                                                        fw["lib/airshake"]),
            "- Handshake completes in: `bench/mp_headroom.py` fills all free heap just "
            "before the Initiator is made and leaves N contiguous bytes; the smallest N with "
            "which the handshake and a record each way pass (3 of 3). Measured on this "
            "64-bit port (32-byte GC blocks, 8-byte pointers); an ESP32's 32-bit port needs "
            "less.",
            "- Firmware size (.mpy, mpy-cross -O2): " + ", ".join(
                "%s %d B" % (k, v) for k, v in fw.items() if k != "total")
            + "; **total %d B**." % fw["total"],
            "- ESP32 estimate: %s" % device["esp32"]["derivation"],
            "- Big-integer operations per handshake and their unix times: " + "; ".join(
                "suite %s: %s = %.1f ms of %.1f ms" % (
                    s, ", ".join("%d x %s" % (n, k) for k, n in device[s]["bigint_ops"].items()),
                    device[s]["bigint_ms"], device[s]["cpu_ms"])
                for s in device_suites(device) if "bigint_ops" in device[s]) + ".", ""]
    return out


def _twin_md(twin: dict[str, Any], device: dict[str, Any] | None) -> list[str]:
    out = ["## 3b. Device on the 32-bit twin", "",
           "The unix port built 32-bit with the ESP32 boards' frozen manifest (%s; "
           "`tools/build_firmware.py twin [--ucrypto]`), the device run by "
           "`testkit/handshake_client.py` (frozen into the twin) against a CPython "
           "responder over UDP, C_B by reference."
           % ", ".join("%s: `%s`" % kv for kv in twin["twins"].items()), ""]
    for backend, why in twin.get("skipped", {}).items():
        out += ["- **%s twin not measured**: %s." % (backend, why)]
    if twin.get("memory"):
        out += ["", "Memory (issue 12): the smallest `-X heapsize` with which the whole "
                "process boots (imports, backend self-tests or their record, keys, radio) "
                "and completes a handshake and a record each way, passing every run of "
                "%d at each step of a bisection (to 256 B); the median of the bisections, "
                "each listed. frozen: the twin's frozen code alone, the device program "
                "included (boards/twin/manifest.py freezes testkit/handshake_client.py, run "
                "as `-m handshake_client`, as a board freezes main.py; AIRSHAKE_LIB an empty "
                "folder, MICROPYPATH .frozen); firmware as .mpy: firmware/lib compiled "
                "with mpy-cross -O2, first on the path (asyncio frozen, as in the stock "
                "firmware), the client compiled from source at run time. Later wake: "
                "AIRSHAKE_KATS=recorded, the self-tests passed on an earlier boot and are "
                "not run again. Pure backend." % twin["memory"][0]["tries"],
                "", "| build | suite | wake | heap, median | bisections | target | result |",
                "|---|---:|---|---:|---|---:|---|"]
        for row in twin["memory"]:
            tgt = row["target_bytes"]
            out.append("| %s | %d | %s | **%s** | %s | %s | %s |" % (
                "frozen" if row["build"] == "frozen" else "firmware as .mpy", row["suite"],
                _wake(row["wake"]), _kib(row["heap_bytes"]),
                ", ".join("%.1f" % (b / KIB) for b in row["bisections"]),
                "<= %d KiB" % (tgt // KIB) if tgt else "none set",
                _yes(row["heap_bytes"] <= tgt) if tgt else ""))
    rows = twin.get("backends")
    if rows:
        f = twin["esp32_factors"]
        out += ["", "CPU per handshake and heap by crypto backend (issue 17; "
                "`bench/device_cost.py` twin_rows, the backend chosen by name): pure = "
                "pure Python; ucrypto = ucryptography's primitives where the self-tests "
                "pass, pure Python for the rest. CPU = time inside the core's calls for "
                "one handshake, the run of median CPU of %d; native = inside the calls "
                "ucryptography serves (with the adapter's conversions), Python = the rest. "
                "Beside it the 64-bit stock binary's (pure, .mpy) median." % rows[0]["runs"],
                "",
                "| suite | backend | CPU ms | native ms | Python ms | process CPU ms | "
                "64-bit binary CPU ms | heap (whole process) | ESP32 estimate ms |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            d = (device or {}).get(str(row["suite"]))
            out.append("| %d | %s | **%.2f** | %.2f | %.2f | %.1f | %s | %s | %d - %d |" % (
                row["suite"], row["backend"], row["cpu_ms"], row["native_ms"],
                row["python_ms"], row["process_handshake_ms"],
                "%.2f" % d["cpu_ms"] if d else "", _kib(row["heap_total"]),
                row["esp32_estimate_ms"][0], row["esp32_estimate_ms"][1]))
        native = sorted({p for row in rows for p in row.get("native_primitives", [])})
        out += ["", "- The device takes from ucryptography (its self-tests passed on the twin): "
                "%s; everything else stays pure Python." % (", ".join(native) or "nothing"),
                "- ESP32 estimate = Python ms x %d..%d + native ms x %d..%d. Python: the "
                "design brief's range for MicroPython bytecode and mpz big-integer work on "
                "a 240 MHz ESP32 against this x86 host. Native C (Mbed TLS): the clock ratio "
                "(about x12-15) times the IPC gap of an in-order core; the ESP32's MPI "
                "accelerator is not counted. Estimates, not measurements: no ESP32 here." % (
                    f["python"][0], f["python"][1], f["native"][0], f["native"][1]),
                "- process CPU ms: the process's user+system CPU of a full run minus that "
                "of a run stopped before the handshake (handshake and a record each way; "
                "robust to other load). The heap here includes the small script that "
                "chooses the backend, so it is a little above the memory table's pure rows.",
                ""]
    return out


def _scaling_md(scaling: dict[str, Any]) -> list[str]:
    out = ["## 4. Scaling", "",
           "One CS topped up to N enrolled devices (concurrent POST /enroll), then a fresh B: "
           "each of the N devices handshakes once (first contact, a CS lookup each), then 32 "
           "concurrent handshakes walk all N devices for %d windows, median (warm: no CS "
           "request, checked)." % len(scaling["rows"][0]["windows"]), "",
           "| devices | enrolment /s | first contacts per B CPU-s | handshakes per B CPU-s "
           "(warm) | per wall s | B RSS idle MiB | after first contacts MiB | after windows "
           "MiB | sessions held |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in scaling["rows"]:
        out.append("| %d | %.0f | %.0f | **%.0f** | %.0f | %.1f | %.1f | %.1f | %d |" % (
            row["devices"], row["enroll"]["per_s"], row["first_contact"]["hs_per_b_cpu_s"] or 0,
            row["hs_per_b_cpu_s"], row["hs_per_s"], row["rss_idle_bytes"] / 2**20,
            row["rss_after_first_contact_bytes"] / 2**20, row["rss_end_bytes"] / 2**20,
            row["sessions_end"]))
    held = scaling.get("held_sessions")
    if held:
        out += ["", "Held sessions (`bench/server_memory.py --rss-sessions %d`): a fresh "
                "process's SessionTable grown to **%d sessions**: VmRSS grew %.0f MiB, **%d B "
                "per session** with its entry (%d MiB at 10^6); tracemalloc over 20,000: %d B "
                "per session." % (held["sessions"], held["sessions"],
                                  held["rss_growth_bytes"] / 2**20, held["rss_bytes_per_session"],
                                  held["projected_1e6_mib"], held["session_bytes_tracemalloc"])]
    g = scaling["growth"]
    out += ["", "Growth: throughput at the largest size / at 1 device = **%.2f**; memory "
            "**%s B per device** after first contact, **%s B per session** held." % (
                g["throughput_ratio_largest_to_1"], g["rss_bytes_per_device"],
                g["rss_bytes_per_session"]), "", "- " + g["note"], ""]
    return out


def write(results: dict[str, Any], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    results["goals"] = goals(results)
    results["plots"] = plots.draw(results, out_dir)
    with open(os.path.join(out_dir, "latest.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write(markdown(results))
