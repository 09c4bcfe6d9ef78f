#!/usr/bin/env python3
"""Soak: 5 durable agents under steady writes, deletes and values with a time to live, for an
hour (CI runs 3 minutes). Every 5 s it samples each agent's RSS and open file descriptors and a
long-running `rumor watch`'s CPU; at the end it stops the writers and checks:

- RSS and open descriptors flat after the warm-up: the peak of the second half at most 10 %
  over the level at the end of the warm-up (descriptors: 10 % or 3, whichever is more);
- no error lines in any agent's log;
- the state identical on every agent (every key, value and version);
- the idle-waiting `rumor watch` under 0.5 % CPU on average.

    python3 bench/soak.py [--seconds 3600] [--agents 5] [--writes-per-second 400]

Prints one JSON line of figures; exits 1 when a check fails.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import Agent, Client, rumor_binary

TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def writer(agent, rate, stop, keys, counts, errors):
    """Each 50 ms: a batch of puts and deletes, one put with a time to live, and now and then a
    put through the CLI, as agents do."""
    client = Client(agent.api)
    rng = random.Random(agent.name)
    per_tick = max(1, int(rate / 20))
    tick = 0
    while not stop.is_set():
        started = time.monotonic()
        entries = []
        for _ in range(per_tick):
            key = f"soak/{rng.randrange(keys)}"
            entries.append({"key": key, "value": None if rng.random() < 0.25 else f"{agent.name}-{tick}"})
        try:
            client.call("POST", "/v1/kv/batch", {"entries": entries})
            client.call("POST", "/v1/kv/put", {"key": f"soak/ttl/{rng.randrange(keys // 4)}", "value": "lease",
                                               "ttlSeconds": rng.uniform(2, 15)})
            counts[agent.name] = counts.get(agent.name, 0) + per_tick + 1
            if tick % 20 == 0:
                result = subprocess.run([rumor_binary(), "put", f"soak/cli/{agent.name}", str(tick), "--api", agent.api],
                                        capture_output=True, timeout=10)
                if result.returncode != 0:
                    errors.append(f"rumor put on {agent.name}: {result.stderr.decode()}")
        except Exception as error:  # noqa: BLE001 (reported, not fatal)
            errors.append(f"{agent.name}: {error}")
            client = Client(agent.api)
        tick += 1
        time.sleep(max(0, 0.05 - (time.monotonic() - started)))


def snapshot(agent):
    entries = Client(agent.api).call("GET", "/v1/kv/list?prefix=soak/")["entries"]
    return {entry["key"]: (entry.get("value"), entry["timestamp"], entry["origin"]) for entry in entries}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--writes-per-second", type=float, default=400, help="cluster-wide")
    parser.add_argument("--keys", type=int, default=2000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rumor-soak-"))
    agents = []
    watcher = None
    stop = threading.Event()
    try:
        extra = ["--tombstone-grace", "30s"]
        seed = Agent("soak0", work, data_dir=work / "soak0", log_level="info", extra=extra)
        agents.append(seed)
        for index in range(1, options.agents):
            agents.append(Agent(f"soak{index}", work, join=seed.gossip, data_dir=work / f"soak{index}", log_level="info",
                                extra=extra))
        deadline = time.monotonic() + 30
        while not all(len(Client(a.api).call("GET", "/v1/members")["members"]) == options.agents for a in agents):
            if time.monotonic() > deadline:
                raise SystemExit("the swarm did not form in 30 s")
            time.sleep(0.1)
        # A long-running client, as agents keep one: it must idle between changes it prints.
        watcher = subprocess.Popen([rumor_binary(), "watch", "soak/cli/", "--api", agents[-1].api],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        counts, errors = {}, []
        threads = [threading.Thread(target=writer, args=(agent, options.writes_per_second / options.agents, stop,
                                                           options.keys, counts, errors), daemon=True)
                   for agent in agents]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        warmup = min(600.0, options.seconds / 2)
        samples = []  # (t, [rss], [fds])
        watch_cpu_start = cpu_seconds(watcher.pid)
        while time.monotonic() - started < options.seconds:
            time.sleep(5)
            samples.append((time.monotonic() - started, [rss_kib(a.process.pid) for a in agents],
                            [open_fds(a.process.pid) for a in agents]))
        watch_cpu = (cpu_seconds(watcher.pid) - watch_cpu_start) / (time.monotonic() - started) * 100
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        # Converged: every agent holds the same keys, values and versions.
        identical = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [snapshot(agent) for agent in agents]
            if all(state == states[0] for state in states):
                identical = True
                break
            time.sleep(1)

        failures = []
        at_warmup = [s for s in samples if s[0] <= warmup][-3:] or samples[:1]
        after = [s for s in samples if s[0] > warmup]
        report = {"seconds": options.seconds, "agents": options.agents, "writes": sum(counts.values()),
                  "writes_per_second": round(sum(counts.values()) / options.seconds), "keys_at_end": len(states[0]),
                  "identical": identical, "watch_cpu_percent": round(watch_cpu, 3), "client_errors": len(errors)}
        for index, agent in enumerate(agents):
            base_rss = sum(s[1][index] for s in at_warmup) / len(at_warmup)
            base_fds = max(s[2][index] for s in at_warmup)
            peak_rss = max((s[1][index] for s in after), default=base_rss)
            peak_fds = max((s[2][index] for s in after), default=base_fds)
            growth = peak_rss / base_rss - 1
            report[agent.name] = {"rss_mib_at_warmup": round(base_rss / 1024, 1), "rss_mib_peak_after": round(peak_rss / 1024, 1),
                                  "rss_growth": round(growth, 3), "fds_at_warmup": base_fds, "fds_peak_after": peak_fds}
            if growth > 0.10:
                failures.append(f"{agent.name}: RSS grew {growth:.1%} after the warm-up")
            if peak_fds > base_fds + max(3, base_fds // 10):
                failures.append(f"{agent.name}: open descriptors grew from {base_fds} to {peak_fds}")
            errors_logged = [line for line in agent.log_path.read_text(errors="replace").splitlines()
                             if " error " in line or " critical " in line]
            if errors_logged:
                failures.append(f"{agent.name} logged errors: {errors_logged[:3]}")
        if not identical:
            failures.append("the agents' states differ 60 s after the writes stopped")
        if watch_cpu > 0.5:
            failures.append(f"rumor watch used {watch_cpu:.2f} % CPU")
        if errors:
            failures.append(f"client errors: {errors[:3]}")
        report["failures"] = failures
        print(json.dumps(report))
        return 1 if failures else 0
    finally:
        stop.set()
        if watcher:
            watcher.kill()
        for agent in agents:
            agent.stop()


if __name__ == "__main__":
    sys.exit(main())
