#!/usr/bin/env python3
"""Failure detection under latency: N Rumor agents in network namespaces, first undelayed, then
with a one-way delay (200 ms) and loss (10 %) on every pair, in both directions, for D seconds.

1. Undelayed: kill -9 one agent and time until every other agent lists it dead (the loopback
   detection time of this run); restart it, wait until all are alive again.
2. Delayed and lossy for D seconds: every agent's member list is polled throughout (a member
   listed dead or failed while it runs is a false death), and so is every agent's count of
   `member_events_failed` (so a death between two polls is not missed).
3. Still delayed: kill -9 another agent and time until every other agent lists it dead. It
   passes if that takes no longer than twice the loopback time plus the added round trips
   (`--added-round-trips`, default 4 of 2×delay: the direct probe, the indirect probe's two
   legs through a peer, and the gossip of the suspicion and the death), and no false death.

    sudo python3 tests/netdelay/failure_detection.py                              # 8 agents, 60 s (CI's size)
    sudo python3 tests/netdelay/failure_detection.py --agents 20 --duration 600   # the full run
    --binary PATH or RUMOR_BIN picks the rumor binary (default .build/release/rumor)

Prints a JSON summary and exits 1 on a false death or a late detection.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delayed_swarm import DEAD_STATES, DelayedSwarm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def time_until_all_list_dead(swarm: DelayedSwarm, victim: int, timeout: float) -> float:
    """Seconds from now until every running agent lists `victim` dead (polled concurrently)."""
    name = swarm.name(victim)
    return swarm.wait(lambda: swarm.all_see({name: "dead"}), timeout, f"every agent lists {name} dead", interval=0.05)


def run(agents: int = 8, duration: float = 60, binary: str | None = None, one_way_ms: float = 200,
        loss: float = 0.10, jitter_ms: float = 0, added_round_trips: int = 4, extra=(), poll_seconds: float = 1.0,
        tag: str | None = None) -> dict:
    """Runs the scenario above; returns the summary (see `main`). Tears everything down."""
    binary = binary or default_binary()
    swarm = DelayedSwarm(agents, binary, extra=extra, tag=tag or f"fd{os.getpid() % 10000}")
    summary = {"agents": agents, "duration_seconds": duration, "one_way_ms": one_way_ms, "loss": loss,
               "jitter_ms": jitter_ms, "added_round_trips": added_round_trips, "extra": list(extra)}
    try:
        summary["join_seconds"] = round(swarm.wait_all_alive(), 2)

        # 1. The undelayed detection time, in this run.
        first = agents - 1
        log(f"kill -9 h{first}, undelayed")
        swarm.kill9(first)
        loopback = time_until_all_list_dead(swarm, first, 120)
        summary["loopback_detection_seconds"] = round(loopback, 2)
        log(f"h{first} listed dead by all after {loopback:.2f} s; restarting it")
        swarm.start(first)
        swarm.wait_all_alive()

        # 2. Delay and loss for `duration` seconds: nobody may be declared dead.
        before = swarm.counters()
        swarm.network.reset_counts()
        swarm.network.set_delays(one_way_ms, jitter_ms, loss)
        log(f"{one_way_ms} ms one way, ±{jitter_ms} ms, {loss:.0%} loss on every pair for {duration:.0f} s")
        false_deaths, suspect_sightings, polls = {}, 0, 0
        started = time.monotonic()
        while time.monotonic() - started < duration:
            polled = time.monotonic()
            swarm.check_running(range(agents))
            swarm.network.check_delayer()
            for observer, view in swarm.views().items():
                for name, state in view.items():
                    if state in DEAD_STATES or state == "left":
                        false_deaths.setdefault(f"{swarm.name(observer)} listed {name} {state}",
                                                round(time.monotonic() - started, 1))
                    elif state == "suspect":
                        suspect_sightings += 1
            polls += 1
            time.sleep(max(0.0, poll_seconds - (time.monotonic() - polled)))
        after = swarm.counters()
        failed_events = {swarm.name(i): after[i].get("member_events_failed", 0) - before[i].get("member_events_failed", 0)
                         for i in after if i in before}
        suspected_events = sum(after[i].get("member_events_suspected", 0) - before[i].get("member_events_suspected", 0)
                               for i in after if i in before)
        for observer, count in failed_events.items():
            if count:
                false_deaths.setdefault(f"{observer} had {count} member_events_failed", round(duration, 1))
        counts = swarm.network.counts()
        summary.update({
            "false_deaths": len(false_deaths),
            "false_death_details": false_deaths,
            "member_events_failed_while_all_alive": sum(failed_events.values()),
            "member_events_suspected_while_all_alive": suspected_events,
            "suspect_sightings_in_polls": suspect_sightings,
            "polls": polls,
            "gossip_packets_per_second": round(counts.total_packets() / duration, 1),
            "packets_dropped_by_loss": counts.total_dropped(),
            "delayer_late_mean_ms": round(counts.raw["late_mean_ms"], 2),
            "delayer_late_max_ms": round(counts.raw["late_max_ms"], 2),
        })
        log(f"{len(false_deaths)} false deaths, {suspected_events} suspicions raised")

        # 3. A crash under the same delay and loss.
        second = agents - 2
        round_trip = 2 * (one_way_ms + jitter_ms) / 1000
        bound = 2 * loopback + added_round_trips * round_trip
        log(f"kill -9 h{second}, delayed; bound {bound:.2f} s")
        swarm.kill9(second)
        delayed = time_until_all_list_dead(swarm, second, max(120, 5 * bound))
        summary["latency_detection_seconds"] = round(delayed, 2)
        summary["detection_bound_seconds"] = round(bound, 2)
        log(f"h{second} listed dead by all after {delayed:.2f} s")
        summary["ok"] = not false_deaths and delayed <= bound
        return summary
    finally:
        swarm.close()


def default_binary() -> str:
    for candidate in (os.environ.get("RUMOR_BIN"), ROOT / ".build/release/rumor"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit("no rumor binary: pass --binary or set RUMOR_BIN")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60, help="seconds under delay and loss (default 60)")
    parser.add_argument("--one-way-ms", type=float, default=200)
    parser.add_argument("--jitter-ms", type=float, default=0)
    parser.add_argument("--loss", type=float, default=0.10)
    parser.add_argument("--added-round-trips", type=int, default=4)
    parser.add_argument("--binary", default=None)
    parser.add_argument("--agent-arg", action="append", default=[], help="extra `rumor agent` argument (repeat)")
    args = parser.parse_args()
    summary = run(args.agents, args.duration, args.binary, args.one_way_ms, args.loss, args.jitter_ms,
                  args.added_round_trips, args.agent_arg)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
