#!/usr/bin/env python3
"""Partition heal at scale: two halves of a swarm each write 500,000 distinct keys of 100 bytes
while apart, then meet; prints the time until every node holds all 1,000,000.

The halves are two swarms that never met (each node of one knows none of the other), joined
through one `POST /v1/join` at the heal: both directions then catch up in pages.

    python3 bench/partition_heal.py [--keys-per-half 500000] [--nodes-per-half 2] [--durable]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import Agent, Client


def load(agent, prefix, start, count, batch=20000):
    client = Client(agent.api)
    value = "v" * 100
    for first in range(start, start + count, batch):
        entries = [{"key": f"{prefix}/{i:09d}", "value": value} for i in range(first, min(start + count, first + batch))]
        client.call("POST", "/v1/kv/batch", {"entries": entries})


def values(agent):
    return Client(agent.api).call("GET", "/v1/kv/status")["values"]


def wait_for(agents, count, timeout, what):
    started = time.monotonic()
    while True:
        held = [values(agent) for agent in agents]
        if all(h >= count for h in held):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what}: nodes hold {held} of {count} after {timeout} s")
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys-per-half", type=int, default=500_000)
    parser.add_argument("--nodes-per-half", type=int, default=2)
    parser.add_argument("--durable", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rumor-heal-"))
    agents = []
    try:
        halves = []
        for half in "ab":
            members = []
            for index in range(options.nodes_per_half):
                name = f"{half}{index}"
                data = work / name if options.durable else None
                members.append(Agent(name, work, join=members[0].gossip if members else None, data_dir=data))
            agents += members
            halves.append(members)
        # Each half writes its keys, spread over its nodes, and settles.
        share = options.keys_per_half // options.nodes_per_half
        started = time.monotonic()
        for half, members in zip("ab", halves):
            for index, agent in enumerate(members):
                load(agent, half, index * share, share)
        for members in halves:
            wait_for(members, share * options.nodes_per_half, options.timeout, "a half settling")
        written = time.monotonic() - started
        total = 2 * share * options.nodes_per_half
        # The heal.
        started = time.monotonic()
        Client(halves[0][0].api).call("POST", "/v1/join", {"addresses": [halves[1][0].gossip]})
        healed = wait_for(agents, total, options.timeout, "after the heal")
        print(json.dumps({"nodes": len(agents), "keys": total, "write_and_settle_seconds": round(written, 1),
                          "heal_seconds": round(healed, 2), "bound_seconds": 30, "within_bound": healed <= 30}))
        return 0 if healed <= 30 else 1
    finally:
        for agent in agents:
            agent.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
