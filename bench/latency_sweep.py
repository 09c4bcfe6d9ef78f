#!/usr/bin/env python3
"""Dissemination against one-way latency: `rumor sim` over N, latency and loss, and the
three-region model, before and after a change, beside the physical limit.

For each N, one-way latency L (a single region: every pair's base is L, with a 50 % jitter tail,
i.e. an exponential tail of mean L/2: `--latency-min-us L --latency-tail-us L/2`, flags every
build understands) and loss, runs `rumor sim … --json` and takes:
- copies: payload copies received per node per update (redundant ones included);
- p99 to 100 %: p99 over the updates of the time until every live node held it;
- limit: the physical limit, the farthest node's shortest path over base latencies (L here; the
  report's `physicalLimit` when the build has it), and the ratio p99 / limit;
- direct: the expected time until the last node hears a one-hop send from the writer to all with
  the same jitter (L + L/2 · H(N-1) here), and p99 / direct.
The three-region model (`--regions 3 --jitter 50%`: 5 ms within, A-B 40, A-C 150, B-C 80 ms) is
run when the build knows it (a build without it prints "n/a").

    python3 bench/latency_sweep.py                                   # quick: N=200, 20/100 ms (~minutes)
    python3 bench/latency_sweep.py --full --svg docs/latency.svg     # N = 1000, 10000; 20/50/100/200 ms
    python3 bench/latency_sweep.py --base-binary /tmp/before/rumor --binary .build/release/rumor

Runs one at a time (the simulator is single-threaded; the machine may be shared), each bounded by
--timeout; a run that times out is reported as such and the sweep goes on. Progress goes to stderr.
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rumor_binary  # noqa: E402

REGIONS = "3 regions"


def harmonic(n):
    return sum(1 / k for k in range(1, n + 1))


def p99(values):
    values = sorted(values)
    return values[math.ceil(len(values) * 0.99) - 1] if values else None


def run_sim(binary, nodes, model, loss, args):
    """One `rumor sim` run; returns a dict of figures, or one with `error`."""
    command = [binary, "sim", "--nodes", str(nodes), "--updates", str(args.updates), "--rounds", str(args.rounds),
               "--loss", f"{loss}%", "--seed", str(args.seed), "--json", "--quiet"]
    if args.warm_up_ms:
        command += ["--first-update-ms", str(args.warm_up_ms)]
    if model == REGIONS:
        command += ["--regions", "3", "--jitter", f"{args.jitter}%"]
    else:
        command += ["--latency-min-us", str(int(model * 1000)), "--latency-tail-us", str(int(model * 1000 * args.jitter / 100))]
    started = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.timeout} s", "wall": args.timeout}
    wall = time.monotonic() - started
    if result.returncode != 0:
        unknown = "unknown option" in result.stderr.lower() or "unexpected argument" in result.stderr.lower()
        return {"error": "n/a: no region model" if unknown else result.stderr.strip()[-300:], "wall": wall}
    report = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])["data"]
    updates = report["updates"]
    times = [u["millisecondsTo100"] if u["millisecondsTo100"] is not None else math.inf for u in updates]
    figures = {
        "copies": sum(u["copiesPerNode"] for u in updates) / len(updates),
        "p99_to_100": p99(times),
        "wall": wall,
    }
    limit = report.get("physicalLimit")
    if limit:
        figures["limit"] = limit.get("p99LimitMilliseconds")
        figures["direct"] = limit.get("p99DirectSendMilliseconds")
    elif model != REGIONS:  # a build without the figure: the same rule, single region
        figures["limit"] = model
        figures["direct"] = model + model * args.jitter / 100 * harmonic(nodes - 1)
    return figures


def fmt(value, digits=1):
    if value is None:
        return "-"
    if value == math.inf:
        return "never"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) or a == math.inf else a / b


def table(rows):
    header = ["build", "N", "one-way", "loss", "copies/node/upd", "p99 to 100 % ms", "limit ms", "ratio",
              "direct ms", "ratio", "wall s"]
    lines = [header]
    for row in rows:
        f = row["figures"]
        model = row["model"] if row["model"] == REGIONS else f"{row['model']:g} ms"
        if "error" in f:
            lines.append([row["build"], str(row["nodes"]), model, f"{row['loss']:g} %", f["error"], "", "", "", "", "",
                          fmt(f["wall"], 0)])
            continue
        lines.append([row["build"], str(row["nodes"]), model, f"{row['loss']:g} %", fmt(f["copies"], 2),
                      fmt(f["p99_to_100"]), fmt(f.get("limit")), fmt(ratio(f["p99_to_100"], f.get("limit")), 2),
                      fmt(f.get("direct")), fmt(ratio(f["p99_to_100"], f.get("direct")), 2), fmt(f["wall"], 1)])
    widths = [max(len(line[i]) for line in lines if len(line[i]) < 24) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(line))
                     for line in lines)


def svg(rows, latencies, path):
    """Two log-log panels against one-way latency: copies per node per update, p99 to 100 %."""
    panel_w, panel_h, left, right, top, bottom, gap = 420, 300, 70, 20, 50, 60, 40
    width = 2 * (left + panel_w + right) + gap
    height = top + panel_h + bottom + 110
    single = [r for r in rows if r["model"] != REGIONS and "error" not in r["figures"]]
    series = {}
    for row in single:
        series.setdefault((row["build"], row["nodes"], row["loss"]), []).append(row)
    colours = ["#c0392b", "#2471a3", "#229954", "#8e44ad", "#d68910", "#17a589"]
    keys = sorted({(n, loss) for _, n, loss in series})
    colour = {key: colours[i % len(colours)] for i, key in enumerate(keys)}
    lo_x, hi_x = math.log10(min(latencies)), math.log10(max(latencies))
    if hi_x == lo_x:
        lo_x, hi_x = lo_x - 0.1, hi_x + 0.1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">rumor sim: dissemination against one-way '
             f'latency (50 % jitter tail); solid after, dashed before</text>']

    def panel(index, title, value, unit, limit_line):
        x0 = index * (left + panel_w + right + gap) + left
        values = [value(r["figures"]) for r in single if value(r["figures"]) not in (None, math.inf)]
        if limit_line:
            values += latencies
        if not values:
            return
        lo_y, hi_y = math.floor(math.log10(max(min(values), 1e-3))), math.ceil(math.log10(max(values)))
        if hi_y == lo_y:
            hi_y += 1

        def x(ms):
            return x0 + (math.log10(ms) - lo_x) / (hi_x - lo_x) * panel_w

        def y(v):
            return top + panel_h - (math.log10(max(v, 10 ** lo_y)) - lo_y) / (hi_y - lo_y) * panel_h

        parts.append(f'<text x="{x0 + panel_w / 2}" y="{top - 8}" text-anchor="middle">{title}</text>')
        parts.append(f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#333"/>')
        for e in range(lo_y, hi_y + 1):
            parts.append(f'<line x1="{x0}" y1="{y(10 ** e):.1f}" x2="{x0 + panel_w}" y2="{y(10 ** e):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 - 6}" y="{y(10 ** e) + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
        for ms in latencies:
            parts.append(f'<text x="{x(ms):.1f}" y="{top + panel_h + 18}" text-anchor="middle">{ms:g}</text>')
        parts.append(f'<text x="{x0 + panel_w / 2}" y="{top + panel_h + 38}" text-anchor="middle">one-way latency, ms</text>')
        parts.append(f'<text x="{x0 - 50}" y="{top + panel_h / 2}" text-anchor="middle" '
                     f'transform="rotate(-90 {x0 - 50} {top + panel_h / 2})">{unit}</text>')
        if limit_line:
            points = " ".join(f"{x(ms):.1f},{y(ms):.1f}" for ms in latencies)
            parts.append(f'<polyline fill="none" stroke="#000" stroke-width="1.5" stroke-dasharray="2,3" points="{points}"/>')
            parts.append(f'<text x="{x(latencies[-1]) - 4:.1f}" y="{y(latencies[-1]) + 14:.1f}" text-anchor="end">physical limit</text>')
        for (build, n, loss), points in sorted(series.items()):
            points = sorted((r["model"], value(r["figures"])) for r in points)
            points = [(ms, v) for ms, v in points if v not in (None, math.inf)]
            if not points:
                continue
            dash = ' stroke-dasharray="6,4"' if build == "before" else ""
            line = " ".join(f"{x(ms):.1f},{y(v):.1f}" for ms, v in points)
            parts.append(f'<polyline fill="none" stroke="{colour[(n, loss)]}" stroke-width="2"{dash} points="{line}"/>')
            for ms, v in points:
                parts.append(f'<circle cx="{x(ms):.1f}" cy="{y(v):.1f}" r="3" fill="{colour[(n, loss)]}"/>')

    panel(0, "payload copies received per node per update", lambda f: f["copies"], "copies", False)
    panel(1, "p99 time to 100 % informed", lambda f: f["p99_to_100"], "ms", True)
    legend_y = top + panel_h + bottom + 20
    for i, (n, loss) in enumerate(keys):
        lx = left + (i % 3) * 260
        ly = legend_y + (i // 3) * 20
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 30}" y2="{ly}" stroke="{colour[(n, loss)]}" stroke-width="2"/>')
        parts.append(f'<text x="{lx + 36}" y="{ly + 4}">N = {n:,}, loss {loss:g} %</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=None, help="the build to measure (default: $RUMOR_BIN or .build/release/rumor)")
    parser.add_argument("--base-binary", help="a build to compare against (the 'before' series)")
    parser.add_argument("--full", action="store_true", help="N = 1000, 10000; latency 20, 50, 100, 200 ms; 20 updates")
    parser.add_argument("--nodes", type=int, nargs="+", help="swarm sizes (default 200; --full: 1000 10000)")
    parser.add_argument("--latency-ms", type=float, nargs="+", help="one-way latencies (default 20 100; --full: 20 50 100 200)")
    parser.add_argument("--loss", type=float, nargs="+", default=[0, 10], help="loss, percent (default 0 10)")
    parser.add_argument("--jitter", type=float, default=50, help="tail mean as a percentage of the base (default 50)")
    parser.add_argument("--no-regions", action="store_true", help="skip the three-region model")
    parser.add_argument("--updates", type=int, help="updates per run (default 5; --full: 20)")
    parser.add_argument("--rounds", type=int, default=12, help="rounds per run (default 12)")
    parser.add_argument("--warm-up-ms", type=int, default=5000,
                        help="the first update this long after the start (default 5000: the nodes have measured "
                             "round trips, as in a swarm that has run a while; 0: at once, a cold start)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    parser.add_argument("--svg", default="latency_sweep.svg", help="plot path (default latency_sweep.svg)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    nodes = args.nodes or ([1000, 10000] if args.full else [200])
    latencies = sorted(args.latency_ms or ([20, 50, 100, 200] if args.full else [20, 100]))
    args.updates = args.updates or (20 if args.full else 5)
    builds = [("after", args.binary or rumor_binary())]
    if args.base_binary:
        builds.insert(0, ("before", args.base_binary))
    models = [m for m in latencies] + ([] if args.no_regions else [REGIONS])
    plan = [(build, binary, n, model, loss) for n in nodes for model in models for loss in args.loss for build, binary in builds]
    rows = []
    for i, (build, binary, n, model, loss) in enumerate(plan, 1):
        label = model if model == REGIONS else f"{model:g} ms"
        print(f"[{i}/{len(plan)}] {build}: N={n}, {label}, loss {loss:g} % …", file=sys.stderr, flush=True)
        figures = run_sim(binary, n, model, loss, args)
        print(f"    {figures.get('error') or 'p99 to 100 % ' + fmt(figures['p99_to_100']) + ' ms'} "
              f"({figures['wall']:.1f} s)", file=sys.stderr, flush=True)
        rows.append({"build": build, "nodes": n, "model": model, "loss": loss, "figures": figures})
    print(table(rows))
    svg(rows, latencies, args.svg)
    print(f"\nplot: {args.svg}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
