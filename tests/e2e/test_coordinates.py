"""Vivaldi network coordinates shared with real Serf agents: Rumor's acks carry its coordinate
as Serf's ping delegate does, so `serf rtt` estimates round trips to Rumor nodes, and
`rumor rtt` to Serf nodes.

The measurement helpers (`rtt_estimates`, `wait_for_estimates`) take any Rumor/Serf pair, so
a test over a delayed link can reuse them and check the estimates against the delay."""

import json
import re
import subprocess

from conftest import wait_until
from test_serf_interop import serf_binary, serf_swarm  # noqa: F401 (fixtures)


def serf_rtt_ms(serf, *nodes):
    """`serf rtt NODE [NODE]` in ms, or None when Serf has no estimate (yet). `serf` gives
    `binary` and `rpc`, and may give `prefix`, an argv the command runs under (a namespace's
    `ip netns exec NS`)."""
    result = subprocess.run([*getattr(serf, "prefix", ()), serf.binary, "rtt", "-rpc-addr", serf.rpc, *nodes],
                            capture_output=True, text=True, timeout=30)
    match = re.search(r"rtt: ([0-9.]+) ms", result.stdout)
    return float(match.group(1)) if result.returncode == 0 and match else None


def rumor_rtt(rumor, *nodes):
    """`rumor rtt NODE [NODE] --json`: the estimate's data, or the error envelope."""
    result = rumor.cli("rtt", *nodes, check=False)
    return json.loads(result.stdout if result.returncode == 0 else (result.stderr or result.stdout))


def rtt_estimates(rumor, rumor_name, serf, serf_name) -> dict:
    """Every estimate of the Rumor<->Serf link both sides give, in ms (None: not yet):
    Serf's of the Rumor node from itself and as a named pair, Rumor's of the Serf node from
    itself and as a named pair."""
    from_rumor = rumor_rtt(rumor, serf_name)
    pair_rumor = rumor_rtt(rumor, serf_name, rumor_name)
    return {
        "serf rtt rumor": serf_rtt_ms(serf, rumor_name),
        "serf rtt rumor serf": serf_rtt_ms(serf, rumor_name, serf_name),
        "rumor rtt serf": from_rumor["data"]["rttMs"] if from_rumor.get("status") == "ok" else None,
        "rumor rtt serf rumor": pair_rumor["data"]["rttMs"] if pair_rumor.get("status") == "ok" else None,
    }


def wait_for_estimates(rumor, rumor_name, serf, serf_name, timeout=30) -> dict:
    """Waits until both sides have every estimate of the link; returns them (ms)."""
    estimates, _ = wait_until(
        lambda: (lambda e: e if all(v is not None for v in e.values()) else None)(
            rtt_estimates(rumor, rumor_name, serf, serf_name)),
        timeout, f"Serf and Rumor estimate the {rumor_name} <-> {serf_name} round trip", interval=0.5)
    return estimates


def test_serf_and_rumor_estimate_round_trips_to_each_other(serf_swarm):
    r1 = serf_swarm.rumor("r1")
    s1 = serf_swarm.serf("s1", join=[r1.address])
    r2 = serf_swarm.rumor("r2", join=[r1.address])
    wait_until(lambda: all(r1.members().get(name) == "alive" for name in ("r1", "r2", "s1")), 20, "all three alive")

    estimates = wait_for_estimates(r1, "r1", s1, "s1")
    print("estimates (ms):", estimates)
    # Loopback: well under 10 ms either way (a fresh coordinate alone gives tens of µs).
    assert all(0 <= value < 10 for value in estimates.values()), estimates

    # The text form is serf's.
    text = r1.cli("rtt", "s1", check=False)
    assert text.returncode == 0
    plain = subprocess.run([r1_rumor_binary(), "rtt", "s1", "--api", r1.api], capture_output=True, text=True, timeout=30)
    assert re.fullmatch(r"Estimated s1 <-> r1 rtt: [0-9]+\.[0-9]{3} ms \(using LAN coordinates\)\n", plain.stdout), plain

    # Members carry coordinates; --sort rtt lists this node first, members with coordinates next.
    wait_until(lambda: rumor_rtt(r1, "r2").get("status") == "ok", 30, "r1 has r2's coordinate")
    members = json.loads(r1.cli("members", "--sort", "rtt").stdout)["data"]["members"]
    assert members[0]["name"] == "r1" and members[0]["rttMs"] == 0, members
    assert all(len(m["coordinate"]["vec"]) == 8 and m["rttMs"] >= 0 for m in members), members
    rtts = [m["rttMs"] for m in members]
    assert rtts == sorted(rtts), members
    coordinate = json.loads(r1.cli("coordinate", "s1").stdout)["data"]
    assert coordinate["node"] == "s1" and len(coordinate["coordinate"]["vec"]) == 8, coordinate

    # Clear errors: an unknown node, a bad sort order.
    for args, code in ((("rtt", "nobody"), "unknown_node"), (("coordinate", "nobody"), "unknown_node"),
                       (("members", "--sort", "age"), "bad_request")):
        result = r1.cli(*args, check=False)
        error = json.loads(result.stderr or result.stdout)
        assert result.returncode == 1 and error["code"] == code and error["hint"], (args, error)

    # Serf took every Rumor coordinate (it logs refusals at debug level as "Rejected coordinate").
    assert "Rejected coordinate" not in s1.log_path.read_text()
    for agent in (r1, r2):
        counters = agent.info()["counters"]
        assert "coordinates_rejected" not in counters, counters


def test_go_memberlist_nodes_ignore_the_ack_payload_and_have_no_coordinate(swarm):
    memberlist = ["--protocol", "memberlist"]
    r1 = swarm.agent("r1", extra=memberlist)
    # Before any probe, only this node's own coordinate is known.
    assert json.loads(r1.cli("coordinate").stdout)["data"]["node"] == "r1"
    g1 = swarm.gonode("g1", join=[r1.address])
    r2 = swarm.agent("r2", join=[r1.address], extra=memberlist)
    r3 = swarm.agent("r3", join=[r1.address], extra=memberlist + ["--disable-coordinates"])
    names = ("r1", "r2", "r3", "g1")
    wait_until(lambda: all(g1.members().get(n) == "alive" and r1.members().get(n) == "alive" for n in names),
               20, "the Go node and the Rumor nodes see each other alive")
    # Rumor nodes learn each other's coordinates; the Go node sends none and gets a clear error,
    # and so does a Rumor node with coordinates off, which has none of its own either.
    wait_until(lambda: rumor_rtt(r1, "r2").get("status") == "ok", 30, "r1 estimates r2")
    for node in ("g1", "r3"):
        error = rumor_rtt(r1, node)
        assert error["code"] == "no_coordinate" and "memberlist" in error["hint"], error
    error = rumor_rtt(r3, "r1")
    assert error["code"] == "no_coordinate" and "disable" in error["hint"], error
    # The Go node keeps taking Rumor's acks (with a coordinate in them) as answers to its probes.
    assert all(state == "alive" for state in g1.members().values()), g1.members()
    assert "coordinates_rejected" not in r1.info()["counters"]


def r1_rumor_binary():
    from conftest import rumor_binary
    return rumor_binary()
