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
    "server_ratio": 2.0,    # B's handshakes/s per core over TLS 1.3's
    "device_cpu_ms": 25.0,  # per handshake, unix binary
    "device_heap": 24 * KIB,
    "session_overhead": 20,
}


def device_suites(device: dict[str, Any]) -> list[str]:
    return sorted((k for k in device if k.isdigit()), key=lambda s: (s == "1", s))


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def goal(name: str, target: str, measured: str, met: bool | None, note: str = "") -> None:
        out.append({"goal": name, "target": target, "measured": measured, "met": met,
                    "note": note})

    air = results.get("air")
    if air:
        total = air["airshake-s0-ref"]["total"]
        goal("Bytes: suite 0, C_B by reference", "<= %d B" % GOALS["bytes"],
             "%d B (%s); EDHOC method 3 with key ids %d B" % (
                 total, "+".join(map(str, air["airshake-s0-ref"]["messages"])),
                 air["edhoc-m3-kid"]["total"]),
             total <= GOALS["bytes"],
             "B's first record (%d B) confirms m3 and is not counted"
             % air["airshake-s0-ref"]["b_first_record_bytes"])
        rec = air["airshake-session-record"]["overhead_bytes"]
        goal("Session uplink overhead", "<= %d B" % GOALS["session_overhead"], "%d B" % rec,
             rec <= GOALS["session_overhead"])
    server = results.get("server")
    if server:
        goal("Server: B vs TLS 1.3 handshakes/s per core", ">= %.0fx" % GOALS["server_ratio"],
             "%.2fx (%.0f / %.0f)" % (server["ratio"], server["airshake_hs_per_s"],
                                     server["tls13_hs_per_s"]),
             server["ratio"] >= GOALS["server_ratio"],
             "B warm cache vs TLS 1.3 mutual with Ed25519 certificates (the faster TLS); "
             "cold cache: %.2fx, vs RSA-2048 certificates: %.2fx"
             % (server["ratio_cold"], server["ratio_vs_typical"]))
    device = results.get("device")
    if device:
        for s in device_suites(device):
            d = device[s]
            goal("Device CPU per handshake, suite %s" % s, "<= %.0f ms" % GOALS["device_cpu_ms"],
                 "%.2f ms" % d["cpu_ms"], d["cpu_ms"] <= GOALS["device_cpu_ms"],
                 "unix binary, pure backend; not a target suite" if s == "1" else
                 "unix binary, pure backend")
            goal("Device peak heap, suite %s" % s, "<= %d KiB" % (GOALS["device_heap"] // KIB),
                 "%.1f KiB" % (d["peak_heap_bytes"] / KIB),
                 d["peak_heap_bytes"] <= GOALS["device_heap"],
                 "whole process: %.1f KiB resident before the handshake (about %.0f KiB of "
                 "it .mpy code loaded into RAM, which frozen modules keep in flash); the "
                 "handshake itself completes in %.1f KiB of free heap"
                 % (d["resident_bytes"] / KIB, device["code_in_ram_bytes"] / KIB,
                    d["handshake_heap_bytes"] / KIB))
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
            "- With one sub-band the wall time is set by the device's duty-cycle pause after "
            "m1 (99 x its time on air), so a smaller first message matters more than a "
            "smaller total."]
    return out + [""]


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
