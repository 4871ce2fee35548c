#!/usr/bin/env python3
"""Plots sampling time against subscribers, indexed vs linear, from criterion's estimates.

Run `cargo bench -p atoma-contract --bench sampling` first, then
`python3 scripts/plot_sampling.py [target_dir] [out.svg]` (defaults: target, docs/sampling.svg).
Writes a log-log SVG with no dependencies beyond the standard library.
"""

import json
import math
import os
import sys

SIZES = [1_000, 10_000, 100_000, 1_000_000]
SERIES = [("indexed", "#1f77b4"), ("linear", "#d62728")]
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 420, 80, 150, 30, 60


def mean_ns(target, kind, size):
    path = os.path.join(target, "criterion", "sample_node_for_stack", kind, str(size), "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def label_ns(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns:g} ns"


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "target"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join("docs", "sampling.svg")
    data = {kind: [mean_ns(target, kind, n) for n in SIZES] for kind, _ in SERIES}
    lo = 10 ** math.floor(math.log10(min(min(v) for v in data.values())))
    hi = 10 ** math.ceil(math.log10(max(max(v) for v in data.values())))
    x0, x1 = math.log10(SIZES[0]), math.log10(SIZES[-1])
    y0, y1 = math.log10(lo), math.log10(hi)

    def px(n):
        return LEFT + (math.log10(n) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(ns):
        return H - BOTTOM - (math.log10(ns) - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2 - 60}" y="18" font-size="14">Sampling one node for a stack</text>']
    decade = lo
    while decade <= hi:
        y = py(decade)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{label_ns(decade)}</text>')
        decade *= 10
    for n in SIZES:
        x = px(n)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{n:,}</text>')
    parts.append(f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 15}" text-anchor="middle">subscribers (log)</text>')
    parts.append(f'<text x="18" y="{(TOP + H - BOTTOM) / 2:.0f}" transform="rotate(-90 18 {(TOP + H - BOTTOM) / 2:.0f})" text-anchor="middle">mean time per sample (log)</text>')
    for i, (kind, color) in enumerate(SERIES):
        points = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in zip(SIZES, data[kind]))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, v in zip(SIZES, data[kind]):
            parts.append(f'<circle cx="{px(n):.1f}" cy="{py(v):.1f}" r="3.5" fill="{color}"/>')
        ly = TOP + 20 + 22 * i
        parts.append(f'<line x1="{W - RIGHT + 15}" y1="{ly}" x2="{W - RIGHT + 40}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{W - RIGHT + 46}" y="{ly + 4}">{kind}</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")
    for kind, _ in SERIES:
        print(kind, [label_ns(v) for v in data[kind]])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
