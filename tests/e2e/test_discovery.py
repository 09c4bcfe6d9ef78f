"""Discovery by swarm name (`--discover`): agents in network namespaces on one bridge find each
other by multicast DNS with no --join; an agent of another swarm on the same bridge is never
found. Also Serf-compatible: a Serf agent started with `-discover NAME` finds Rumor nodes of
swarm NAME (docs/serf-wire.md §10). Needs root (CI runs as root)."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, measure, rumor_binary, wait_until

sys.path.insert(0, str(ROOT / "tests/faults"))
from netns import Network, require_root_tools  # noqa: E402


@pytest.fixture
def network():
    problems = require_root_tools()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
    net = Network(3, tag=f"rd{os.getpid() % 100000}")
    for host in net.hosts:
        # Multicast leaves through the bridge (a host's only route is its /24).
        net.exec_in(host, "ip", "route", "add", "224.0.0.0/4", "dev", "eth0")
    yield net
    net.close()


def start(network, index, name, swarm, workdir, extra=()):
    args = [rumor_binary(), "agent", "--name", name, "--bind", f"{network.addresses[index]}:7946",
            "--api", "127.0.0.1:7373", "--swarm", swarm, "--discover", *extra]
    log = open(workdir / f"{name}.log", "ab")
    return subprocess.Popen(network.command(index, *args), stdout=log, stderr=log)


def members(network, index):
    result = subprocess.run(network.command(index, rumor_binary(), "members", "--api", "127.0.0.1:7373", "--json"),
                            capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        return {}
    return {m["name"]: m["state"] for m in json.loads(result.stdout)["data"]["members"]}


def test_agents_find_their_swarm_by_name_and_ignore_another(network, tmp_path):
    started = time.monotonic()
    agents = [start(network, 0, "a1", "alpha", tmp_path), start(network, 1, "a2", "alpha", tmp_path),
              start(network, 2, "b1", "beta", tmp_path)]
    try:
        wait_until(lambda: members(network, 0) == {"a1": "alive", "a2": "alive"} and
                   members(network, 1) == {"a1": "alive", "a2": "alive"}, 15,
                   "a1 and a2 find each other by the swarm name alpha, with no --join")
        measure("discovery_pair_formed", time.monotonic() - started)
        time.sleep(6)  # more rounds of questions (every 5 s while alone): beta's node still alone
        assert members(network, 2) == {"b1": "alive"}, members(network, 2)
        assert set(members(network, 0)) == {"a1", "a2"}, members(network, 0)
        logs = (tmp_path / "a1.log").read_text() + (tmp_path / "a2.log").read_text()
        assert "discovered nodes of the swarm" in logs, logs[-3000:]
        # A third alpha node started later is found as well.
        agents[2].kill()
        agents[2].wait()
        agents.append(start(network, 2, "a3", "alpha", tmp_path))
        wait_until(lambda: set(members(network, 0)) == {"a1", "a2", "a3"}, 15, "a late alpha node is discovered")
    finally:
        for agent in agents:
            agent.kill()
            agent.wait()


def test_discover_needs_a_swarm_name(tmp_path):
    for args, needle in ((["--discover"], "no swarm is named"),
                         (["--discover", "--swarm", "a.b"], "cannot be discovered")):
        result = subprocess.run([rumor_binary(), "agent", "--json", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", *args],
                                capture_output=True, text=True, timeout=10)
        assert result.returncode != 0
        error = json.loads(result.stderr or result.stdout)
        assert error["code"] == "bad_arguments" and needle in error["message"], error
