"""Five real agents on loopback: join, crash detection, graceful leave, SIGTERM."""

import math

from conftest import measure, wait_until

PROBE_INTERVAL = 1.0  # lan profile


def lifeguard_bound(n: int) -> float:
    """Max suspicion timeout for N members (suspicionMult 4, max-timeout mult 6) + 2 probe periods."""
    minimum = 4 * max(1.0, math.log10(n)) * PROBE_INTERVAL
    return 6 * minimum + 2 * PROBE_INTERVAL


def all_alive(agents, count):
    def check():
        views = [agent.members() for agent in agents]
        return all(len(v) == count and set(v.values()) == {"alive"} for v in views) and views
    return check


def test_five_agents_join_detect_crash_and_leave(swarm):
    seed = swarm.agent("n1")
    agents = [seed] + [swarm.agent(f"n{i}", join=[seed.address]) for i in range(2, 6)]
    _, joined = wait_until(all_alive(agents, 5), 5, "every agent lists 5 alive members")
    measure("join_all_alive", joined)

    crashed = agents[4]
    crashed.kill9()
    survivors = agents[:4]
    bound = lifeguard_bound(5)
    _, detected = wait_until(
        lambda: all(agent.members().get("n5") == "dead" for agent in survivors),
        bound,
        f"every survivor reports n5 dead within {bound:.0f}s",
        interval=0.1,
    )
    measure("kill9_detected_by_all", detected)

    leaver = agents[3]
    leaver.cli("leave")
    _, left = wait_until(
        lambda: all(agent.members().get("n4") == "left" for agent in survivors[:3]),
        2,
        "every survivor reports n4 left within 2s",
        interval=0.05,
    )
    measure("leave_seen_by_all", left)


def test_sigterm_leaves_gracefully_and_exits_zero(swarm):
    seed = swarm.agent("a")
    other = swarm.agent("b", join=[seed.address])
    wait_until(all_alive([seed, other], 2), 5, "both agents see each other")
    assert other.terminate() == 0, "SIGTERM should make the agent leave and exit 0"
    wait_until(lambda: seed.members().get("b") == "left", 2, "the seed lists b as left")


def test_info_reports_this_node(swarm):
    seed = swarm.agent("solo")
    info = seed.info()
    assert info["name"] == "solo"
    assert info["address"] == seed.address
    assert info["members"]["alive"] == 1
    assert info["healthScore"] == 0
