#!/usr/bin/env python3
"""Rumor over Pilot against Rumor over UDP on loopback, measured in the same run: the latency of
a put until every node holds it (`rumor put --wait all`, the CLI as agents call it) and the time
until the others declare a kill -9'd agent dead. Three agents each way; the Pilot ones on three
pilot-daemons of a local offline Pilot network (tests/e2e/pilot_net.py; root, pilotprotocol).

    sudo python3 bench/pilot.py [--puts 100] [--kills 3] [--nodes 3]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests/e2e"))
from common import Agent, Client, percentile, rumor_binary  # noqa: E402
from pilot_net import PilotNet  # noqa: E402


def pilot_extra(net, index):
    return ["--transport", "pilot", "--pilot-socket", net.socket(index)]


def start_swarm(kind, nodes, log_dir, net, generation):
    agents = []
    for index in range(1, nodes + 1):
        name = f"{kind}{index}g{generation}"
        if kind == "pilot":
            join = "pilot:node-1" if index > 1 else None
            agents.append(Agent(name, log_dir, join=join, extra=pilot_extra(net, index)))
        else:
            agents.append(Agent(name, log_dir, join=agents[0].gossip if agents else None))
    names = {agent.name for agent in agents}
    deadline = time.monotonic() + 60
    while True:
        views = [{m["name"]: m["state"] for m in Client(a.api).call("GET", "/v1/members")["members"]} for a in agents]
        if all(all(view.get(name) == "alive" for name in names) for view in views):
            return agents
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind} swarm did not form: {views}")
        time.sleep(0.1)


def put_latencies(agents, puts):
    """Wall time of `rumor put KEY VALUE --wait all` through the CLI, round-robin over the agents."""
    # Warm-up: the first write to each peer can wait for Pilot trust and tunnels.
    for agent in agents:
        subprocess.run([rumor_binary(), "put", "warm", agent.name, "--wait", "all", "--api", agent.api],
                       capture_output=True, timeout=60)
    samples = []
    for i in range(puts):
        agent = agents[i % len(agents)]
        started = time.monotonic()
        result = subprocess.run([rumor_binary(), "put", f"bench/{i}", "x" * 64, "--wait", "all", "--api", agent.api],
                                capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"put failed: {result.stderr}")
        samples.append(elapsed * 1000)
    return sorted(samples)


def detection_seconds(agents, log_dir, kind, net, generation):
    """kill -9 of the last agent; seconds until every other agent reports it dead."""
    victim = agents[-1]
    victim.process.kill()
    victim.process.wait()
    started = time.monotonic()
    while True:
        views = [{m["name"]: m["state"] for m in Client(a.api).call("GET", "/v1/members")["members"]} for a in agents[:-1]]
        if all(view.get(victim.name) == "dead" for view in views):
            return time.monotonic() - started
        if time.monotonic() - started > 60:
            raise SystemExit(f"{kind}: {victim.name} not declared dead in 60 s: {views}")
        time.sleep(0.05)


def run(kind, arguments, log_dir, net):
    result = {}
    detections = []
    for generation in range(arguments.kills):
        agents = start_swarm(kind, arguments.nodes, log_dir, net, generation)
        try:
            if generation == 0:
                samples = put_latencies(agents, arguments.puts)
                result.update(put_median_ms=round(statistics.median(samples), 2),
                              put_p99_ms=round(percentile(samples, 0.99), 2))
            detections.append(detection_seconds(agents, log_dir, kind, net, generation))
        finally:
            for agent in agents:
                agent.stop()
        if kind == "pilot":
            time.sleep(1)  # the daemons release the killed agent's port
    result["detect_median_s"] = round(statistics.median(detections), 2)
    result["detect_max_s"] = round(max(detections), 2)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--puts", type=int, default=100)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    arguments = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="rumor-bench-pilot-"))
    net = PilotNet(arguments.nodes)
    try:
        udp = run("udp", arguments, log_dir, net)
        pilot = run("pilot", arguments, log_dir, net)
    finally:
        net.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    print(f"{'':24}{'udp (loopback)':>16}{'pilot':>12}{'pilot/udp':>11}")
    for key, label in [("put_median_ms", "put --wait all median ms"), ("put_p99_ms", "put --wait all p99 ms"),
                       ("detect_median_s", "kill -9 detected, med s"), ("detect_max_s", "kill -9 detected, max s")]:
        print(f"{label:24}{udp[key]:>16}{pilot[key]:>12}{pilot[key] / udp[key]:>11.2f}")
    print(json.dumps({"nodes": arguments.nodes, "puts": arguments.puts, "kills": arguments.kills, "udp": udp, "pilot": pilot}))


if __name__ == "__main__":
    main()
