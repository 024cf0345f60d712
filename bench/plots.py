# bench.plots: the PNG figures of a benchmark run, drawn with matplotlib (Agg, no display)
# from the results dict alone: bytes per protocol stacked per message, SF12 wall time per
# protocol, B against TLS 1.3 throughput, and B's scaling curve.
from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FILES = ("bytes_per_protocol.png", "sf12_wall.png", "server_throughput.png", "scaling.png")
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


def _bytes(air: dict[str, Any], path: str) -> None:
    names = list(air)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    left = [0] * len(names)
    for i in range(max(len(c["messages"]) for c in air.values())):
        widths = [c["messages"][i] if i < len(c["messages"]) else 0 for c in air.values()]
        ax.barh(names, widths, left=left, color=COLOURS[i % len(COLOURS)],
                label="message %d" % (i + 1), edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, widths)]
    for y, total in enumerate(left):
        ax.text(total, y, " %d" % total, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=200)
    ax.set_xlabel("bytes on the air (symlog scale), stacked per message")
    ax.set_title("Bytes per handshake, measured from each real implementation")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sf12(air: dict[str, Any], path: str) -> None:
    names = list(air)
    one = [c["links"]["lora-sf12/1sb"]["wall_s"] for c in air.values()]
    three = [c["links"]["lora-sf12/3sb"]["wall_s"] for c in air.values()]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], one, height=0.4, color=COLOURS[0], label="1 sub-band")
    ax.barh([y + 0.2 for y in ys], three, height=0.4, color=COLOURS[1], label="3 sub-bands")
    for y, v in zip(ys, one):
        ax.text(v, y - 0.2, " %.0f s" % v, va="center", fontsize=7)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("wall time of the exchange, s (log), raw LoRa SF12/125 kHz, 1% duty cycle")
    ax.set_title("EU868 SF12: duty-cycle-bound wall time (linkemu model)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _server(server: dict[str, Any], path: str) -> None:
    bars = [("airshake B\nwarm cache", server["airshake_hs_per_s"]),
            ("airshake B\ncold (CS/HTTP)", server["airshake_cold_hs_per_s"]),
            ("TLS 1.3 mutual\nEd25519 certs", server["tls13_hs_per_s"]),
            ("TLS 1.3 mutual\nRSA-2048 certs", server["tls13_typical_hs_per_s"])]
    if "airshake_s2_warm" in server:
        bars.insert(1, ("airshake B suite 2\nwarm cache",
                        server["airshake_s2_warm"]["hs_per_b_cpu_s"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels, values = zip(*bars)
    colours = [COLOURS[0] if lab.startswith("airshake") else COLOURS[3] for lab in labels]
    ax.bar(labels, values, color=colours)
    for x, v in enumerate(values):
        ax.text(x, v, "%.0f" % v, ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("handshakes per CPU-second of the server process")
    ax.set_title("Server throughput per core (ratio warm / TLS Ed25519 = %.2f)" % server["ratio"])
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scaling(scaling: dict[str, Any], path: str) -> None:
    rows = scaling["rows"]
    n = [row["devices"] for row in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(n, [row["hs_per_b_cpu_s"] for row in rows], "o-", color=COLOURS[0],
            label="handshakes / B CPU-second (warm window)")
    ax.set_xscale("log")
    ax.set_xlabel("enrolled devices, all handshaking (32 concurrent)")
    ax.set_ylabel("handshakes per B CPU-second", color=COLOURS[0])
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(n, [row["rss_after_first_contact_bytes"] / 2**20 for row in rows], "s--",
             color=COLOURS[1], label="B RSS after first contacts, MiB")
    ax2.plot(n, [row["rss_end_bytes"] / 2**20 for row in rows], "^:", color=COLOURS[3],
             label="B RSS after the window, MiB")
    ax2.set_ylabel("B resident memory, MiB")
    ax2.set_ylim(bottom=0)
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="lower left", fontsize=8)
    ax.set_title("Server B as enrolled devices grow")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(results: dict[str, Any], out_dir: str) -> list[str]:
    """Draws every figure whose section is in results; returns the files written."""
    written = []
    for name, section, fn in ((FILES[0], "air", _bytes), (FILES[1], "air", _sf12),
                              (FILES[2], "server", _server), (FILES[3], "scaling", _scaling)):
        if section in results:
            path = os.path.join(out_dir, name)
            fn(results[section], path)
            written.append(name)
    return written
