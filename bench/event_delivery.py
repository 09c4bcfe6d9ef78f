#!/usr/bin/env python3
"""User-event delivery, CLI to every node's handler: Rumor against Serf, on N nodes each, in the
same run. Every agent runs the same event handler script (Serf's contract: it reads
SERF_USER_EVENT and appends it with the time it ran to a file); an event is sent with the CLI
(`rumor event NAME`, `serf event -coalesce=false NAME`) and its delivery time is from just
before the CLI starts until the last node's handler has run. An event some handler has not run
for after --give-up seconds counts as lost (Serf has no repair for events but its 30 s
push-pull) and is left out of the percentiles; the lost counts are printed.

    python3 bench/event_delivery.py [--nodes 10] [--events 40]

Needs a release build (`swift build -c release`) and Go with Debian's serf source (as
bench/serf_compare.py, which builds serf into .build/serf).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, percentile, rumor_binary  # noqa: E402
from serf_compare import build_serf  # noqa: E402

HANDLER = """#!/bin/sh
echo "$SERF_SELF_NAME $SERF_USER_EVENT $(date +%s%N)" >> {out}
"""


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


class Swarm:
    def __init__(self, kind, nodes, directory, serf):
        self.kind = kind
        self.serf = serf
        self.out = directory / f"{kind}-handled.txt"
        handler = directory / f"{kind}-handler.sh"
        handler.write_text(HANDLER.format(out=self.out))
        handler.chmod(0o755)
        self.processes = []
        self.controls = []
        seed = None
        for index in range(nodes):
            gossip, control = free_port(), free_port()
            log = open(directory / f"{kind}{index}.log", "wb")
            if kind == "rumor":
                args = [rumor_binary(), "agent", "--name", f"r{index}", "--bind", f"127.0.0.1:{gossip}",
                        "--api", f"127.0.0.1:{control}", "--log-level", "error", "--event-handler", f"user={handler}"]
                if seed:
                    args += ["--join", seed]
            else:
                args = [serf, "agent", f"-node=s{index}", f"-bind=127.0.0.1:{gossip}", f"-rpc-addr=127.0.0.1:{control}",
                        "-log-level=err", f"-event-handler=user={handler}"]
                if seed:
                    args += [f"-join={seed}"]
            self.processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            self.controls.append(f"127.0.0.1:{control}")
            seed = seed or f"127.0.0.1:{gossip}"
            time.sleep(0.3 if index == 0 else 0.05)
        wait_for(lambda: self.alive() == nodes, 60, f"{nodes} {kind} agents alive")

    def alive(self):
        if self.kind == "rumor":
            result = subprocess.run([rumor_binary(), "members", "--api", self.controls[0], "--json"], capture_output=True, text=True)
            if result.returncode != 0:
                return 0
            return sum(1 for m in json.loads(result.stdout)["data"]["members"] if m["state"] == "alive")
        result = subprocess.run([self.serf, "members", f"-rpc-addr={self.controls[0]}", "-status=alive"], capture_output=True, text=True)
        return len([line for line in result.stdout.splitlines() if line.strip()]) if result.returncode == 0 else 0

    def send(self, name, origin):
        control = self.controls[origin % len(self.controls)]
        if self.kind == "rumor":
            args = [rumor_binary(), "event", name, "--api", control]
        else:
            args = [self.serf, "event", f"-rpc-addr={control}", "-coalesce=false", name]
        subprocess.run(args, check=True, capture_output=True)

    def handled(self, name):
        """Nanosecond times at which each node's handler ran for `name`."""
        times = {}
        if self.out.exists():
            for line in self.out.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] == name:
                    times[parts[0]] = int(parts[2])
        return times

    def stop(self):
        for process in self.processes:
            process.kill()
            process.wait()


def measure(swarm, nodes, events, give_up):
    """Delivery times in ms, sorted, and how many events some node never handled within `give_up` s."""
    delays = []
    lost = 0
    for index in range(events):
        name = f"bench-{index}"
        started = time.time_ns()
        swarm.send(name, index)
        deadline = time.monotonic() + give_up
        while len(swarm.handled(name)) < nodes and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(swarm.handled(name)) < nodes:
            lost += 1
            print(f"{swarm.kind}: event {name} reached {len(swarm.handled(name))} of {nodes} handlers in {give_up} s",
                  file=sys.stderr)
            continue
        delays.append((max(swarm.handled(name).values()) - started) / 1e6)
        time.sleep(0.05)
    return sorted(delays), lost


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--give-up", type=float, default=10,
                        help="seconds after which an event not yet handled everywhere counts as lost")
    arguments = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="rumor-bench-events-"))
    serf = build_serf()
    results = {}
    try:
        for kind in ("rumor", "serf"):
            swarm = Swarm(kind, arguments.nodes, directory, serf)
            try:
                delays, lost = measure(swarm, arguments.nodes, arguments.events, arguments.give_up)
            finally:
                swarm.stop()
            if not delays:
                sys.exit(f"{kind}: no event reached every handler")
            results[kind] = {"p50_ms": round(statistics.median(delays), 1), "p99_ms": round(percentile(delays, 0.99), 1),
                             "max_ms": round(delays[-1], 1), "lost": lost}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"user event, CLI to every handler, {arguments.nodes} nodes, {arguments.events} events")
    print(f"{'':8}{'rumor':>10}{'serf':>10}{'ratio':>8}")
    for key in ("p50_ms", "p99_ms", "max_ms"):
        print(f"{key:8}{results['rumor'][key]:>10}{results['serf'][key]:>10}{results['rumor'][key] / results['serf'][key]:>8.3f}")
    print(f"{'lost':8}{results['rumor']['lost']:>10}{results['serf']['lost']:>10}   (not handled everywhere within {arguments.give_up:.0f} s)")
    print(json.dumps({"nodes": arguments.nodes, "events": arguments.events, **results,
                      "p99_ratio": round(results["rumor"]["p99_ms"] / results["serf"]["p99_ms"], 3)}))


if __name__ == "__main__":
    main()
