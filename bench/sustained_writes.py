#!/usr/bin/env python3
"""Sustained writes across a swarm: N durable agents, every one writing, a target rate
cluster-wide, replication lag measured by watch streams.

    python3 bench/sustained_writes.py [--nodes 16] [--rate 5000] [--seconds 20] [--watchers 4] [--json FILE]

Each agent gets small batches (POST /v1/kv/batch) every 50 ms so that together they write
`--rate` puts/s; each value carries its send time. `--watchers` agents stream every change, and
the lag of a put is the time from its send to its arrival in a watch stream of another agent.
"""

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from common import Agent, Client, percentile, watch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--watchers", type=int, default=2)
    parser.add_argument("--json")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sustained-"))
    agents = []
    try:
        seed = Agent("w0", work, data_dir=work / "w0")
        agents.append(seed)
        for index in range(1, options.nodes):
            agents.append(Agent(f"w{index}", work, join=seed.gossip, data_dir=work / f"w{index}"))
        deadline = time.monotonic() + 30
        while not all(len(Client(a.api).call("GET", "/v1/members")["members"]) == options.nodes for a in agents):
            if time.monotonic() > deadline:
                raise SystemExit("the swarm did not form in 30 s")
            time.sleep(0.1)

        lags = []
        arrivals = {}
        lock = threading.Lock()
        watchers = agents[-options.watchers:]

        def on_line(watcher):
            def record(value, arrived):
                writer, sent = value.split("@")
                if writer == watcher.name:
                    return
                with lock:
                    lags.append(arrived - float(sent))
                    arrivals[watcher.name] = arrivals.get(watcher.name, 0) + 1
            return record

        for watcher in watchers:
            # The value is all we need: cut it out of the line rather than parse 5k lines/s of JSON.
            watch(watcher, "load/", on_line(watcher), parse=lambda line: line.split(b'"value":"', 1)[1].split(b'"', 1)[0].decode())
        time.sleep(1)

        period = 0.05
        per_batch = options.rate * period / len(agents)
        written = [0] * len(agents)
        stop = time.monotonic() + options.seconds

        def writer(index):
            client = Client(agents[index].api)
            debt = 0.0
            tick = time.monotonic()
            while tick < stop:
                debt += per_batch
                count = int(debt)
                debt -= count
                if count:
                    sent = time.monotonic()
                    entries = [{"key": f"load/{index}/{written[index] + i}", "value": f"{agents[index].name}@{sent}"}
                               for i in range(count)]
                    client.call("POST", "/v1/kv/batch", {"entries": entries})
                    written[index] += count
                tick += period
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        start = time.monotonic()
        threads = [threading.Thread(target=writer, args=(index,)) for index in range(len(agents))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        achieved = sum(written) / (time.monotonic() - start)
        # Let the tail arrive, then count what every watcher saw.
        expected = {w.name: sum(written) - written[agents.index(w)] for w in watchers}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(arrivals.get(n, 0) < e for n, e in expected.items()):
            time.sleep(0.1)
        with lock:
            ordered = sorted(lags)
            complete = all(arrivals.get(n, 0) >= e for n, e in expected.items())
    finally:
        for agent in agents:
            agent.stop()
    p50, p99, worst = percentile(ordered, 0.5), percentile(ordered, 0.99), ordered[-1] if ordered else None
    print(f"{options.nodes} durable agents, {options.seconds:.0f} s, target {options.rate:.0f} puts/s cluster-wide")
    print(f"achieved:            {achieved:8.0f} puts/s (acknowledged)")
    print(f"replication lag:     p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {worst * 1000:.1f} ms "
          f"over {len(ordered)} arrivals at {len(watchers)} watchers (goal p99 <= 250 ms)")
    print(f"every put reached every watcher: {complete}")
    if options.json:
        Path(options.json).write_text(json.dumps({
            "nodes": options.nodes, "target_rate": options.rate, "achieved_rate": achieved, "lag_p50_seconds": p50,
            "lag_p99_seconds": p99, "lag_max_seconds": worst, "complete": complete}, indent=2) + "\n")


if __name__ == "__main__":
    main()
