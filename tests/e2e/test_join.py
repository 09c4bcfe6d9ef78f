"""Joining by name and over IPv6: a seed given as a DNS name joins through every address the name
resolves to (the first may be down), and a pair of agents on IPv6 loopback forms a swarm. The DNS
test gives the agents their own /etc/hosts in a private mount namespace (root; CI runs as root)."""

import json
import os
import subprocess

import pytest

from conftest import free_port, rumor_binary, wait_until


def test_an_ipv6_pair_forms_a_swarm_and_replicates(swarm):
    port_b = free_port()
    # Bound to ::1 only: nothing IPv4 can reach them (the later --bind wins over the harness's).
    a = swarm.agent("v6-a", extra=["--bind", f"[::1]:{port_b}"])
    b = swarm.agent("v6-b", join=[f"[::1]:{port_b}"], extra=["--bind", f"[::1]:{free_port()}"])
    wait_until(lambda: a.members().get("v6-b") == "alive" and b.members().get("v6-a") == "alive", 10,
               "the IPv6 pair sees each other alive")
    listed = {m["name"]: m["address"] for m in json.loads(a.cli("members").stdout)["data"]["members"]}
    assert listed["v6-a"] == f"[::1]:{port_b}", listed
    put = json.loads(b.cli("put", "six", "v6", "--wait", "all").stdout)
    assert sorted(put["data"]["replicas"]) == ["v6-a", "v6-b"], put


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a private /etc/hosts: run as root (CI does)")
def test_a_seed_name_with_several_addresses_joins_through_any(swarm, tmp_path):
    port = free_port()
    down = swarm.agent("seed-1", extra=["--bind", f"127.0.0.1:{port}"])
    up = swarm.agent("seed-2", join=[f"127.0.0.1:{port}"], extra=["--bind", f"127.0.0.2:{port}"])
    wait_until(lambda: up.members().get("seed-1") == "alive", 10, "the two seeds form a swarm")
    down.kill9()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 seeds.rumor.test\n127.0.0.2 seeds.rumor.test\n")
    api = f"127.0.0.1:{free_port()}"
    script = (f'mount --bind {hosts} /etc/hosts && exec {rumor_binary()} agent --name joiner '
              f'--bind 127.0.0.1:{free_port()} --api {api} --join seeds.rumor.test:{port}')
    log = open(tmp_path / "joiner.log", "wb")
    joiner = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)
    try:
        def joined():
            result = subprocess.run([rumor_binary(), "members", "--api", api, "--json"], capture_output=True, text=True)
            return result.returncode == 0 and {m["name"]: m["state"] for m in json.loads(result.stdout)["data"]["members"]}.get("seed-2") == "alive"
        wait_until(joined, 20, "the joiner reaches seed-2 through the name's second address")
        text = (tmp_path / "joiner.log").read_text()
        assert "127.0.0.2" in text and "joined" in text, text
    finally:
        joiner.kill()
        joiner.wait()
