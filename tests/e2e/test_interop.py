"""A mixed cluster of Rumor agents and HashiCorp memberlist (Go) nodes: the Rumor agents speak
plain memberlist (`--protocol memberlist`), since memberlist admits a node only when its delegate
version lies in every other node's range and Serf's (Rumor's default) does not."""

MEMBERLIST = ["--protocol", "memberlist"]

from conftest import measure, wait_until


class Views(dict):
    """Each node's view of the members: truthy when every view shows every name in the state,
    and shown whole when a wait times out."""

    def __init__(self, views, ok):
        super().__init__(views)
        self.ok = ok

    def __bool__(self):
        return self.ok


def everyone_sees(nodes, names, state="alive"):
    def check():
        views = {node.name: node.members() for node in nodes}
        return Views(views, all(all(view.get(name) == state for name in names) for view in views.values()))
    return check


def test_mixed_cluster_with_go_memberlist(swarm):
    r1 = swarm.agent("r1", extra=MEMBERLIST)
    g1 = swarm.gonode("g1", join=[r1.address])  # Go joins through a Rumor seed
    r2 = swarm.agent("r2", join=[g1.address], extra=MEMBERLIST)  # Rumor joins through a Go seed
    r3 = swarm.agent("r3", join=[r1.address], extra=MEMBERLIST)
    g2 = swarm.gonode("g2", join=[r2.address])
    nodes = [r1, r2, r3, g1, g2]
    names = ["r1", "r2", "r3", "g1", "g2"]
    _, joined = wait_until(everyone_sees(nodes, names), 10, "all five see all five alive, on both sides")
    measure("mixed_join_all_alive", joined)

    g2.kill9()
    _, detected = wait_until(
        lambda: all(node.members().get("g2") == "dead" for node in [r1, r2, r3]),
        30, "Rumor nodes report the killed Go node dead", interval=0.2)
    measure("rumor_detects_go_kill9", detected)

    r3.kill9()
    _, detected = wait_until(
        lambda: g1.members().get("r3") == "dead", 30, "the Go node reports the killed Rumor node dead", interval=0.2)
    measure("go_detects_rumor_kill9", detected)

    g1.leave()
    _, left = wait_until(everyone_sees([r1, r2], ["g1"], state="left"), 5, "Rumor nodes report the Go node left")
    measure("rumor_sees_go_leave", left)

    # A fresh Go node to watch a Rumor node leave (g1 has left).
    g3 = swarm.gonode("g3", join=[r1.address])
    wait_until(everyone_sees([r1, r2, g3], ["r1", "r2", "g3"]), 10, "g3 joins")
    r2.cli("leave")
    _, left = wait_until(lambda: g3.members().get("r2") == "left" and r1.members().get("r2") == "left", 5,
                         "Go and Rumor nodes report the Rumor node left")
    measure("go_sees_rumor_leave", left)
