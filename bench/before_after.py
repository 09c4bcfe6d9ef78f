#!/usr/bin/env python3
"""One benchmark with two Rumor builds, alternately in the same session: the cost of a change,
as the ratio of the new build's figures to the base build's.

    python3 bench/before_after.py --base /tmp/base/rumor sustained      # bench/sustained_writes.py
    python3 bench/before_after.py --base /tmp/base/rumor dissemination  # bench/serf_compare.py --nodes 100
    python3 bench/before_after.py --base /tmp/base/rumor --rounds 3 sustained -- --rate 3000

Build the base from the commit before the change in a worktree of its own
(`git worktree add /tmp/base COMMIT && cd /tmp/base && swift build -c release`). Each round runs
the base then the new build; the table gives each figure's median over the rounds and new/base.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (script and arguments, figures: label -> how to read it from the script's --json output)
BENCHMARKS = {
    "sustained": (
        ["sustained_writes.py", "--nodes", "16", "--rate", "5000", "--seconds", "20"],
        {
            "achieved puts/s": lambda d: d["achieved_rate"],
            "lag p50 (ms)": lambda d: d["lag_p50_seconds"] * 1000,
            "lag p99 (ms)": lambda d: d["lag_p99_seconds"] * 1000,
        },
    ),
    "dissemination": (
        ["serf_compare.py", "--nodes", "100", "--updates", "100", "--kills", "1"],
        {
            "dissemination p50 (ms)": lambda d: row(d, "dissemination p50 (ms)"),
            "dissemination p99 (ms)": lambda d: row(d, "dissemination p99 (ms)"),
            "idle CPU per agent (%)": lambda d: row(d, "idle CPU per agent (% core)"),
        },
    ),
}


def row(figures, label):
    return next(r["rumor"] for r in figures["rows"] if r["figure"] == label)


def run(script, binary):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = dict(os.environ, RUMOR_BIN=binary)
        result = subprocess.run([sys.executable, str(ROOT / "bench" / script[0]), *script[1:], "--json", out.name],
                                env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{script[0]} with {binary} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return json.loads(Path(out.name).read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--base", required=True, help="the base build's rumor binary")
    parser.add_argument("--new", default=str(ROOT / ".build" / "release" / "rumor"), help="the new build's (default: this tree's)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more arguments for the benchmark (they win)")
    options = parser.parse_args()
    script, figures = BENCHMARKS[options.benchmark]
    script = script + [arg for arg in options.extra if arg != "--"]
    values = {"base": {label: [] for label in figures}, "new": {label: [] for label in figures}}
    for number in range(options.rounds):
        for build, binary in (("base", options.base), ("new", options.new)):
            print(f"round {number + 1}/{options.rounds}: {build} ({binary})", file=sys.stderr, flush=True)
            data = run(script, binary)
            for label, read in figures.items():
                values[build][label].append(read(data))
    print(f"\n{options.benchmark}: {' '.join(script)}, {options.rounds} rounds, medians\n")
    print(f"{'figure':28} {'base':>10} {'new':>10} {'new/base':>9}")
    for label in figures:
        base, new = statistics.median(values["base"][label]), statistics.median(values["new"][label])
        ratio = f"{new / base:.3f}" if base else "n/a"
        print(f"{label:28} {base:10.2f} {new:10.2f} {ratio:>9}   (base {values['base'][label]}, new {values['new'][label]})")


if __name__ == "__main__":
    main()
