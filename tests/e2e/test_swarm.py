"""Nodes of different swarms on the same network ignore each other."""

import time

from conftest import wait_until


def test_nodes_of_another_swarm_are_ignored_and_counted(swarm):
    red = swarm.agent("red1", swarm="red")
    red2 = swarm.agent("red2", swarm="red", join=[red.address])
    wait_until(lambda: len(red.members()) == 2, 5, "red1 and red2 form the red swarm")

    blue = swarm.agent("blue1", swarm="blue")
    result = blue.cli("join", red.address, check=False)
    assert result.returncode == 1, "joining another swarm must fail"
    assert '"code":"join_failed"' in result.stderr.replace(" ", ""), result.stderr

    time.sleep(1.5)  # gossip rounds in which a leak would show
    assert set(red.members()) == {"red1", "red2"}
    assert set(red2.members()) == {"red1", "red2"}
    assert set(blue.members()) == {"blue1"}
    dropped = red.info()["counters"].get("dropped_label", 0)
    assert dropped > 0, "red1 counts blue's attempt as another swarm's traffic"
    with open(red.log_path) as log:
        assert "ignoring packets from another swarm" in log.read()
