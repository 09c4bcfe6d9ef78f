#!/usr/bin/env python3
"""Time until every node holds an update, against swarm size: `rumor sim` on this build, drawn as
an SVG next to the rumor mongering it replaced.

Runs `rumor sim --nodes N --updates 20 [--loss L] --json` for each N and loss, takes the p99 over
the updates of the time to reach 100 % of nodes, prints a table and writes the plot.

    python3 bench/broadcast_plot.py --out docs/broadcast.svg            # N = 100 … 100,000 (~3 min)
    python3 bench/broadcast_plot.py --nodes 100 1000 --out /tmp/b.svg   # quick

The "before" series is rumor mongering with a hop bound (the push path up to commit 1028ef4),
measured the same way with that build and recorded here: the figures of issue 12.
"""

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rumor_binary  # noqa: E402

BEFORE_0_LOSS = {100: 1680, 500: 2400, 1000: 1980, 10000: 2260, 100000: 2460}


def p99_to_all(binary, nodes, loss):
    result = subprocess.run(
        [binary, "sim", "--nodes", str(nodes), "--updates", "20", "--loss", loss, "--json", "--quiet"],
        capture_output=True, text=True, check=True)
    report = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])["data"]
    times = sorted(u["millisecondsTo100"] if u["millisecondsTo100"] is not None else math.inf for u in report["updates"])
    copies = sum(u["copiesPerNode"] for u in report["updates"]) / len(report["updates"])
    return times[math.ceil(len(times) * 0.99) - 1], copies


def svg(series, path):
    width, height, left, bottom, top, right = 640, 400, 70, 50, 30, 20
    xs = sorted({n for points in series.values() for n in points})
    lo_x, hi_x = math.log10(min(xs)), math.log10(max(xs))
    lo_y, hi_y = 0, math.log10(5000)  # 1 ms … 5 s

    def x(n):
        return left + (math.log10(n) - lo_x) / (hi_x - lo_x) * (width - left - right)

    def y(ms):
        return height - bottom - (math.log10(max(ms, 1)) - lo_y) / (hi_y - lo_y) * (height - bottom - top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">p99 time until every node holds an update (rumor sim, fanout 3, 20 updates)</text>']
    for ms in (1, 10, 100, 1000):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(ms):.1f}" y2="{y(ms):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms if ms < 1000 else "1 s"}{" ms" if ms < 1000 else ""}</text>')
    for n in xs:
        parts.append(f'<text x="{x(n):.1f}" y="{height - bottom + 18}" text-anchor="middle">{n:,}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">nodes</text>')
    colors = ["#c0392b", "#2471a3", "#1e8449"]
    for index, (label, points) in enumerate(series.items()):
        color = colors[index % len(colors)]
        coords = " ".join(f"{x(n):.1f},{y(ms):.1f}" for n, ms in sorted(points.items()))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, ms in points.items():
            parts.append(f'<circle cx="{x(n):.1f}" cy="{y(ms):.1f}" r="3" fill="{color}"/>')
        parts.append(f'<text x="{left + 10}" y="{top + 82 + 16 * index}" fill="{color}">{label}</text>')
    parts.append("</svg>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--out", default="docs/broadcast.svg")
    options = parser.parse_args()
    binary = rumor_binary()
    tree_0, tree_10 = {}, {}
    print(f"{'N':>8} {'p99 to 100 %, 0 % loss':>24} {'10 % loss':>12} {'copies':>14} {'mongering before':>18}")
    for nodes in options.nodes:
        tree_0[nodes], copies_0 = p99_to_all(binary, nodes, "0")
        tree_10[nodes], copies_10 = p99_to_all(binary, nodes, "10%")
        before = BEFORE_0_LOSS.get(nodes)
        print(f"{nodes:>8,} {tree_0[nodes]:>21.1f} ms {tree_10[nodes]:>9.1f} ms {copies_0:>6.2f} / {copies_10:<5.2f}"
              f" {f'{before} ms' if before else '-':>18}")
    series = {"rumor mongering, 0 % loss (before)": {n: ms for n, ms in BEFORE_0_LOSS.items() if n in options.nodes},
              "broadcast tree, 0 % loss": tree_0, "broadcast tree, 10 % loss": tree_10}
    svg(series, options.out)
    print(f"plot: {options.out}")


if __name__ == "__main__":
    main()
