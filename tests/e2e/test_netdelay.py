"""Rumor on a network with real latency: agents in network namespaces behind the NFQUEUE delayer
(tests/netdelay), which holds each gossip packet for its (source, destination) pair's one-way
delay and counts packets per pair. Needs root (CI runs as root).

- Writes down the broadcast tree cost no more packets at 50 ms one way than at 0 ms.
- Failure detection at 200 ms one way and 10 % loss: no false deaths, and a crash is found within
  twice the undelayed detection time plus the added round trips (tests/netdelay/failure_detection.py;
  CI runs 8 agents for 60 s, the documented full run 20 agents for 10 minutes).
- The delayer itself: the RTT across a delayed link is what was set (ping and UDP, slow and at
  more than 1000 packets per second), per pair.
- Issue 28's bar for network coordinates: a Serf agent's `serf rtt` to a Rumor node and `rumor
  rtt` to the Serf node (and to another Rumor node), 40 ms each way: within 25 % of 80 ms after a
  minute.
"""

import json
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from conftest import ROOT, rumor_binary

sys.path.insert(0, str(ROOT / "tests/netdelay"))
from delayed_network import (DelayedNetwork, across_delayed_link, delay_tools_missing,  # noqa: E402
                             ping_rtt_ms, udp_rtt_ms)
import failure_detection  # noqa: E402
from test_coordinates import rtt_estimates, rumor_rtt  # noqa: E402
from test_serf_interop import serf_binary  # noqa: E402,F401 (fixture)

PUTS = 20
IDLE_SECONDS = 3
SETTLE_SECONDS = 2


@pytest.fixture(autouse=True)
def _needs_root_and_nfqueue():
    problems = delay_tools_missing()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


def idle_window(network):
    """The delayer's counts over IDLE_SECONDS with nothing written, and the seconds they took."""
    network.reset_counts()
    started = time.monotonic()
    time.sleep(IDLE_SECONDS)
    return network.counts(), time.monotonic() - started


def put_round(swarm, label: str) -> dict:
    """Gossip packets per put: the delayer's counts over PUTS writes (spread over the writers, no
    --wait) until every node holds every one of them and SETTLE_SECONDS more, less the idle
    rate (probes, anti-entropy) measured over IDLE_SECONDS just before and just after."""
    network, nodes = swarm.network, len(swarm)
    idle_before, before_seconds = idle_window(network)

    network.reset_counts()
    started = time.monotonic()
    for number in range(PUTS):
        swarm.cli(number % nodes, "put", f"{label}/{number}", f"value-{number}")
    expected = {f"{label}/{number}": f"value-{number}" for number in range(PUTS)}

    def held_by_all():
        listings = swarm.on_each(lambda index: swarm.cli(index, "list", f"{label}/"))
        return all(not isinstance(listing, Exception)
                   and {e["key"]: e.get("value") for e in listing["entries"]} == expected
                   for listing in listings.values())
    held_seconds = swarm.wait(held_by_all, 30, f"every node holds all {PUTS} writes of {label}")
    time.sleep(SETTLE_SECONDS)
    counts, seconds = network.counts(), time.monotonic() - started
    assert held_by_all(), f"a node lost a write of {label} after holding it"
    idle_after, after_seconds = idle_window(network)
    idle_seconds = before_seconds + after_seconds

    def per_put(measure):
        background = (measure(idle_before) + measure(idle_after)) / idle_seconds * seconds
        return round((measure(counts) - background) / PUTS, 1)
    figures = {
        "label": label,
        "held_seconds": round(held_seconds, 2),
        "window_seconds": round(seconds, 2),
        "replication_packets_per_put": per_put(lambda c: c.replication_packets()),
        "gossip_packets_per_put": per_put(lambda c: c.total_packets()),
        "idle_gossip_packets_per_second": round((idle_before.total_packets() + idle_after.total_packets()) / idle_seconds, 1),
        "idle_replication_packets_per_second": round(
            (idle_before.replication_packets() + idle_after.replication_packets()) / idle_seconds, 1),
        "dropped": counts.total_dropped(),
    }
    print(f"MEASURE netdelay_puts {figures}")
    return figures


def test_tree_writes_cost_no_more_packets_at_50ms_one_way_than_at_0ms(delayed_swarm):
    # Twelve agents with --direct-push-limit 2: every write goes down the broadcast tree, whose
    # relays wait for a confirmation before sending again. The confirmation takes one round trip
    # (100 ms here), so a relay that resends sooner pays packets for nothing. The swarm starts at
    # 50 ms, as a swarm in several clouds does, and the same agents are then measured at 0 ms.
    swarm = delayed_swarm(12, extra=["--direct-push-limit", "2"], one_way_ms=50)
    swarm.wait_all_alive()
    time.sleep(3)  # the join's broadcasts die down
    at_fifty = put_round(swarm, "fifty")

    swarm.network.set_delays(0)
    time.sleep(3)
    swarm.check_running(range(len(swarm)))
    assert swarm.all_see({swarm.name(i): "alive" for i in range(len(swarm))}), "a member is not alive at 0 ms"
    at_zero = put_round(swarm, "zero")

    ratio = at_fifty["gossip_packets_per_put"] / at_zero["gossip_packets_per_put"]
    replication_ratio = at_fifty["replication_packets_per_put"] / at_zero["replication_packets_per_put"]
    print(f"MEASURE netdelay_tree_packets_per_put 0ms={at_zero['gossip_packets_per_put']} "
          f"50ms={at_fifty['gossip_packets_per_put']} ratio={ratio:.2f} "
          f"(replication frames {at_zero['replication_packets_per_put']} vs {at_fifty['replication_packets_per_put']}, "
          f"ratio {replication_ratio:.2f})")
    assert replication_ratio <= 1.5 and ratio <= 1.5, (
        f"a write down the tree costs {replication_ratio:.1f}x the replication packets at 50 ms one way "
        f"({at_fifty['replication_packets_per_put']} vs {at_zero['replication_packets_per_put']} per put; "
        f"all gossip {ratio:.1f}x): relays resend before a confirmation can come back")


def test_failure_detection_under_200ms_and_10pct_loss(tmp_path):
    # The small version of tests/netdelay/failure_detection.py (the full one: --agents 20 --duration 600).
    summary = failure_detection.run(agents=8, duration=60, binary=rumor_binary())
    print(f"MEASURE netdelay_failure_detection {summary}")
    assert summary["false_deaths"] == 0, f"members declared dead while alive: {summary['false_death_details']}"
    assert summary["latency_detection_seconds"] <= summary["detection_bound_seconds"], (
        f"a crash took {summary['latency_detection_seconds']} s to be found at 200 ms and 10 % loss, more than "
        f"{summary['detection_bound_seconds']} s (twice the {summary['loopback_detection_seconds']} s without "
        f"delay plus {summary['added_round_trips']} round trips)")


def test_delayer_holds_each_pair_for_its_delay_also_at_1000_packets_per_second():
    def measure(network):
        slow_ping = ping_rtt_ms(network, 0, 1, count=10, interval=0.05)
        slow_udp = udp_rtt_ms(network, 0, 1, rate=20, seconds=1)
        fast_udp = udp_rtt_ms(network, 1, 0, rate=1500, seconds=2)
        return slow_ping, slow_udp, fast_udp, network.counts()

    slow_ping, slow_udp, fast_udp, counts = across_delayed_link(measure, one_way_ms=40)
    print(f"MEASURE netdelay_accuracy_40ms ping={slow_ping} udp={slow_udp} udp_fast={fast_udp} "
          f"late_mean_ms={counts.raw['late_mean_ms']:.2f} late_max_ms={counts.raw['late_max_ms']:.2f}")
    # Medians and minima: on a busy 2-core machine one packet in a few hundred leaves ~10 ms late.
    assert 79.5 <= slow_ping["min"] <= 85 and slow_ping["avg"] <= 90, slow_ping
    assert abs(slow_udp["p50"] - 80) <= 5, slow_udp
    assert fast_udp["rate"] >= 1000 and fast_udp["received"] == fast_udp["sent"], fast_udp
    assert abs(fast_udp["p50"] - 80) <= 5, fast_udp
    assert counts.packets[0][1] >= fast_udp["sent"] and counts.packets[1][0] >= fast_udp["sent"], counts.raw

    # Per pair: three hosts, a region matrix (0 and 1 near, 2 far from both).
    with DelayedNetwork(3, icmp=True, tag=f"ndm{time.monotonic_ns() % 1000}") as network:
        network.set_delays(lambda s, d: 5 if {s, d} == {0, 1} else 60)
        near, far = udp_rtt_ms(network, 0, 1, rate=50, seconds=0.5), udp_rtt_ms(network, 1, 2, rate=50, seconds=0.5)
        print(f"MEASURE netdelay_matrix near={near['p50']:.1f}ms far={far['p50']:.1f}ms")
        assert abs(near["p50"] - 10) <= 5 and abs(far["p50"] - 120) <= 5, (near, far)


class RumorInNamespace:
    """Agent `index` of a `DelayedSwarm` as test_coordinates' helpers take a Rumor agent: `cli`
    runs `rumor ARGS --json` inside its namespace and returns the finished process."""

    def __init__(self, swarm, index):
        self.swarm, self.index = swarm, index

    def cli(self, *args, check=True):
        result = subprocess.run(self.swarm.network.command(self.index, self.swarm.binary, *args, "--api",
                                                           "127.0.0.1:7373", "--json"),
                                capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise AssertionError(f"h{self.index}: rumor {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result


RTT_BAR_MS, RTT_TOLERANCE = 80, 0.25   # issue 28: within 25 % of 80 ms ...
RTT_AFTER_SECONDS, RTT_LAST_SECONDS = 60, 70  # ... after one minute (read from 60 s, for at most 10 s)


def test_serf_and_rumor_estimate_an_80ms_round_trip_within_25pct_after_a_minute(delayed_swarm, serf_binary):  # noqa: F811
    # Rumor agents h0 and h2 and a Serf agent s1 (host 1), 40 ms each way between every pair.
    # Serf gossips on host 1's GOSSIP_PORT (swarm.address(1)), the port the delayer queues (UDP
    # probes and acks, TCP push-pull); its RPC stays on loopback, undelayed.
    swarm = delayed_swarm(3, start=False, one_way_ms=40)
    link = udp_rtt_ms(swarm.network, 0, 1, rate=20, seconds=1)
    assert abs(link["p50"] - 80) <= 5, f"the link's UDP RTT is not 80 ms: {link}"
    swarm.start(0)
    rumor = RumorInNamespace(swarm, 0)
    swarm.wait(lambda: swarm.cli(0, "members"), 20, "h0 serves its API")

    serf = SimpleNamespace(binary=serf_binary, rpc="127.0.0.1:7373", prefix=swarm.network.command(1))
    swarm.logs[1] = open(swarm.workdir / "h1.log", "ab")  # swarm.close() kills it; its log shows on failure
    started = time.monotonic()
    swarm.agents[1] = subprocess.Popen(
        swarm.network.command(1, serf_binary, "agent", "-node", "s1", "-bind", swarm.address(1), "-rpc-addr",
                              serf.rpc, "-join", swarm.address(0), "-log-level", "debug"),
        stdout=swarm.logs[1], stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    swarm.start(2)
    names = ("h0", "s1", "h2")

    def serf_members():
        listed = subprocess.run([*serf.prefix, serf_binary, "members", "-rpc-addr", serf.rpc, "-format", "json"],
                                capture_output=True, text=True, timeout=30)
        return {m["name"]: m["status"] for m in json.loads(listed.stdout)["members"]} if listed.returncode == 0 else {}
    joined = swarm.wait(lambda: all(swarm.members(i).get(name) == "alive" for i in (0, 2) for name in names)
                        and all(serf_members().get(name) == "alive" for name in names),
                        30, "h0, h2 and s1 all see all three alive")
    swarm.check_running((0, 1, 2))

    def estimates():
        found = rtt_estimates(rumor, "h0", serf, "s1")
        to_rumor = rumor_rtt(rumor, "h2")
        found["rumor rtt rumor"] = to_rumor["data"]["rttMs"] if to_rumor.get("status") == "ok" else None
        return found

    def within(value):
        return value is not None and abs(value - RTT_BAR_MS) <= RTT_TOLERANCE * RTT_BAR_MS

    history = []  # (seconds since Serf started, estimates)
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= RTT_LAST_SECONDS:
            break
        history.append((round(elapsed, 1), {k: None if v is None else round(v, 1) for k, v in estimates().items()}))
        if elapsed >= RTT_AFTER_SECONDS and all(within(v) for v in history[-1][1].values()):
            break
        time.sleep(1 if elapsed >= RTT_AFTER_SECONDS else 5)
    swarm.check_running((0, 1, 2))
    seconds, final = history[-1]
    print(f"MEASURE netdelay_rtt_estimates_40ms_one_way at={seconds}s joined={joined:.1f}s link_p50={link['p50']:.1f}ms "
          f"{final}")
    print("estimates over time (s, ms):\n" + "\n".join(f"  {t:5.1f}  {e}" for t, e in history))
    wrong = {name: value for name, value in final.items() if not within(value)}
    low, high = RTT_BAR_MS * (1 - RTT_TOLERANCE), RTT_BAR_MS * (1 + RTT_TOLERANCE)
    assert not wrong, (
        f"{seconds} s after the Serf agent started (all alive after {joined:.1f} s), across a link of 40 ms each way "
        f"(UDP RTT p50 {link['p50']:.1f} ms), these estimates are outside {low:.0f}-{high:.0f} ms (80 ms ± 25 %): "
        f"{wrong}; all: {final}; over time: {history}")
