# host_server.demo.diagram: owns the picture of a run: an SVG sequence diagram (written
# by hand, no dependency) of one device's wakes, with lanes for A, the radio link, B and
# the certificate store. Each radio frame is an arrow with its name, bytes, time on air
# and modelled start time; duty-cycle waits, LoRaWAN windows and lost frames are marked;
# the CS lookup, B's verdict and the device's steps are notes; the first authenticated
# application byte is highlighted. Rows follow the order things happened (a time axis
# would be mostly duty-cycle wait).
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from host_server.demo.monitor import Row, Run

WIDTH = 1060
ROW = 24
TOP = 150
X_TIME, X_A, X_B, X_CS = 70, 230, 700, 930
AIR_L, AIR_R = 300, 630


def _t(x: float, y: float, text: str, size: int = 12, anchor: str = "start",
       color: str = "#222", weight: str = "normal") -> str:
    return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s" '
            'font-weight="%s">%s</text>' % (x, y, size, anchor, color, weight, escape(text)))


def _line(x1: float, y1: float, x2: float, y2: float, color: str = "#222",
          dash: str = "", marker: bool = True, width: float = 1.5) -> str:
    return ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s%s/>'
            % (x1, y1, x2, y2, color, width,
               ' stroke-dasharray="%s"' % dash if dash else "",
               ' marker-end="url(#arrow)"' if marker else ""))


def render(run: Run, summary: dict[str, Any], device: int = 1) -> str:
    rows = [r for r in run.rows if r.device == device]
    d = summary["per_device"][device - 1]
    height = TOP + ROW * (len(rows) + 3) + 60
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="DejaVu Sans Mono, Menlo, monospace">'
           % (WIDTH, height, WIDTH, height),
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#222"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>']
    clock = "modelled (virtual time)" if summary["virtual"] else "real time"
    title = "airshake demo: %s, loss %.0f%%, suite %d, device %d of %d; times %s" % (
        summary["link"], summary["loss"] * 100, summary["suite"], device,
        summary["devices"], clock)
    out.append(_t(20, 28, title, 15, weight="bold"))
    fb = d["first_byte_modelled_s"]
    out.append(_t(20, 50, "handshake %s B (m1 %s + m2 %s + m3 %s); first authenticated "
                  "application byte at %s; %d frames, %.2f s on air" % (
                      sum(d["sizes"].get(k, 0) for k in ("m1", "m2", "m3")),
                      d["sizes"].get("m1", "-"), d["sizes"].get("m2", "-"),
                      d["sizes"].get("m3", "-"), "-" if fb is None else "%.2f s" % fb,
                      d["frames"], d["airtime_s"]), 12, color="#444"))
    # lanes
    bottom = height - 40
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#eef4fb"/>'
               % (AIR_L, TOP - 40, AIR_R - AIR_L, bottom - TOP + 40))
    for x, name, sub in ((X_A, "A  device %d" % device, "MicroPython unix, real firmware"),
                         ((AIR_L + AIR_R) / 2, "radio link", summary["link"]),
                         (X_B, "B  server", "airshake server"),
                         (X_CS, "CS  cert store", "SQLite, by ID")):
        if name != "radio link":
            out.append('<rect x="%.1f" y="%d" width="150" height="38" rx="4" fill="#f6f6f6" '
                       'stroke="#888"/>' % (x - 75, TOP - 78))
            out.append(_line(x, TOP - 40, x, bottom, "#999", "4,4", False, 1))
        out.append(_t(x, TOP - 62, name, 13, "middle", weight="bold"))
        out.append(_t(x, TOP - 47, sub, 10, "middle", "#555"))
    out.append(_t(X_TIME, TOP - 47, "t (s)", 10, "end", "#555"))
    y = TOP
    wake = 0
    for r in rows:
        if r.wake != wake and r.wake > 0:
            wake = r.wake
            what = "wake 1: first contact" if wake == 1 else \
                "wake 2: one record on the saved session" if wake == 2 else \
                "wake %d: session removed by the demo, a later handshake" % wake
            out.append(_line(20, y - 8, WIDTH - 20, y - 8, "#bbb", "2,3", False, 1))
            out.append(_t(WIDTH - 24, y - 11, what, 10, "end", "#777"))
            y += 10
        out.extend(_row(run, r, y, d))
        y += ROW
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _row(run: Run, r: Row, y: float, d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if r.kind == "frame" and r.frame is not None:
        f = r.frame
        up = f.direction == "up"
        x1, x2 = (X_A, X_B) if up else (X_B, X_A)
        out.append(_t(X_TIME, y + 4, "%.2f" % run.rel(f.t), 11, "end", "#555"))
        label = "%s · %d B · ToA %.0f ms" % (f.label, f.size, f.airtime * 1000)
        if f.duty_wait > 0.05:
            label += " · waited %.1f s (duty cycle)" % f.duty_wait
        if f.window:
            label += " · %s" % f.window.upper()
        color = "#1f5fa8" if up else "#2e7d32"
        if f.dropped:
            out.append(_line(x1, y, (x1 + x2) / 2, y, "#aaa", "3,3", False))
            out.append(_t((x1 + x2) / 2 + 6, y + 4, "not sent: %s" % f.dropped, 10,
                          color="#888"))
            return out
        if f.lost:
            mid = (AIR_L + AIR_R) / 2
            out.append(_line(x1, y, mid, y, "#c62828", "5,3", False))
            out.append(_t(mid, y + 5, "✕", 15, "middle", "#c62828", "bold"))
            label += " · LOST"
            color = "#c62828"
        else:
            out.append(_line(x1, y, x2, y, color))
        out.append(_t((AIR_L + AIR_R) / 2, y - 5, label, 10, "middle", color))
        first = d["first_byte_modelled_s"]
        if up and f.kind == "m3" and not f.lost and first is not None \
                and f.arrive is not None and run.devices[f.device].m3_arrive_model == f.arrive:
            out.append('<circle cx="%d" cy="%.1f" r="5" fill="#f9a825"/>' % (X_B, y))
            out.append(_t(X_B + 10, y + 4, "first authenticated application byte, %.2f s"
                          % first, 10, color="#b26a00", weight="bold"))
    elif r.kind == "lookup":
        out.append(_line(X_B, y - 4, X_CS, y - 4, "#6a1b9a"))
        out.append(_line(X_CS, y + 4, X_B, y + 4, "#6a1b9a"))
        out.append(_t((X_B + X_CS) / 2, y - 8,
                      "ID_A -> C_A (GET /certs or /certs/batch): %s" % r.text, 10,
                      "middle", "#6a1b9a"))
    elif r.kind == "b":
        out.append(_note(X_B, y, r.text, "#fff3e0"))
    elif r.kind == "a":
        out.append(_note(X_A, y, r.text, "#e8f5e9", left=True))
    return out


def _note(x: float, y: float, text: str, fill: str, left: bool = False) -> str:
    text = text if len(text) <= 78 else text[:75] + "..."
    width = 7 * len(text) + 12
    x0 = x - 8 if not left else x - 70
    return ('<rect x="%.1f" y="%.1f" width="%d" height="17" rx="3" fill="%s" stroke="#ccc"/>'
            % (x0, y - 12, width, fill) + _t(x0 + 6, y + 1, text, 10, color="#333"))


def write(path: Path, run: Run, summary: dict[str, Any], device: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run, summary, device), encoding="utf-8")
    return path
