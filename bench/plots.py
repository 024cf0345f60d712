# bench.plots: the PNG figures of a benchmark run, drawn with matplotlib (Agg, no display)
# from the results dict alone: bytes per protocol stacked per message, wall time per
# protocol at SF12 and LoRaWAN DR0 under each duty-cycle policy, B against TLS 1.3
# throughput, and B's scaling curve.
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


def _policy_links(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # results written before the policies were modelled hold per-frame only
    return case.get("links_by_policy") or {"per-frame": case["links"]}


def _sf12(air: dict[str, Any], path: str) -> None:
    names = list(air)
    policies = list(_policy_links(next(iter(air.values()))))
    panels = (("lora-sf12/1sb", "raw LoRa SF12/125 kHz"),
              ("lorawan-eu868-dr0/1sb", "LoRaWAN EU868 DR0"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 6), sharey=True)
    ys = range(len(names))
    height = 0.8 / len(policies)
    for ax, (link, title) in zip(axes, panels):
        for i, policy in enumerate(policies):
            walls = [_policy_links(c)[policy][link]["wall_s"] for c in air.values()]
            offset = (i - (len(policies) - 1) / 2) * height
            ax.barh([y + offset for y in ys], walls, height=height,
                    color=COLOURS[i % len(COLOURS)], label=policy)
            for y, v in zip(ys, walls):
                ax.text(v, y + offset, " %.3g" % v, va="center", fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("wall time of the exchange, s (log)")
        ax.set_title("%s, 1 sub-band, 1%% duty cycle" % title, fontsize=9)
    axes[0].set_yticks(list(ys))
    axes[0].set_yticklabels(names, fontsize=8)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="duty-cycle policy", loc="lower center",
               ncol=len(policies), fontsize=8)
    fig.suptitle("Duty-cycle-bound wall time per protocol and policy (linkemu model)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
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
