"""Restarts in every mode (issue 26), on five real agents holding 10,000 keys written by all of
them: one agent is killed (-9) and comes back with no data dir, an empty one, a copy taken
thousands of writes earlier, or its current one, and at once writes (or reads). It must hold
every key again, `rumor status` must say "in sync" only once the state fingerprints match, and
no acknowledged write may be lost."""

import json
import shutil
import sqlite3
import time
import urllib.parse

import pytest

from conftest import measure, wait_until
from test_replication import get, http

KEYS_PER_WRITER = 2_000  # 10,000 keys from five writers


def batch(agent, prefix, start, count):
    entries = [{"key": f"{prefix}/{i}", "value": f"{prefix}-{i}"} for i in range(start, start + count)]
    for chunk in range(0, len(entries), 500):
        answer = http(agent, "POST", "/v1/kv/batch", {"entries": entries[chunk:chunk + 500]})
        assert answer["status"] == "ok", answer


def status(agent):
    return json.loads(agent.cli("status").stdout)["data"]


def count(agent, prefix=""):
    answer = http(agent, "GET", "/v1/kv/list?" + urllib.parse.urlencode({"prefix": prefix, "stale": "true"}))
    return len(answer["data"]["entries"]) if answer["status"] == "ok" else -1


def in_sync_with_everyone(agent, names):
    peers = status(agent)["peers"]
    return all(peers.get(name, {}).get("state") == "in_sync" for name in names)


@pytest.mark.parametrize("action", ["write", "read"])
def test_a_restarted_agent_holds_every_key_again_in_every_restart_mode(swarm, tmp_path, action):
    data = {f"n{i}": tmp_path / f"n{i}" for i in range(1, 6)}
    seed = swarm.agent("n1", extra=["--data-dir", str(data["n1"])])
    agents = [seed] + [
        swarm.agent(f"n{i}", join=[seed.address], extra=["--data-dir", str(data[f"n{i}"])]) for i in range(2, 6)
    ]
    wait_until(lambda: all(len(a.members()) == 5 for a in agents), 10, "five agents see each other")
    # Half the keys, then a copy of n5's data dir (SQLite's online backup), then the rest.
    for agent in agents:
        batch(agent, agent.name, 0, KEYS_PER_WRITER // 2)
    wait_until(lambda: count(agents[4]) == 5 * KEYS_PER_WRITER // 2, 30, "n5 holds the first half")
    stale = tmp_path / "n5-snapshot"
    stale.mkdir()
    with sqlite3.connect(data["n5"] / "state.sqlite") as source, sqlite3.connect(stale / "state.sqlite") as copy:
        source.backup(copy)
    for agent in agents:
        batch(agent, agent.name, KEYS_PER_WRITER // 2, KEYS_PER_WRITER // 2)
    expected = 5 * KEYS_PER_WRITER
    wait_until(lambda: all(count(a) == expected for a in agents), 60, "every agent holds 10,000 keys")

    n5, others = agents[4], agents[:4]
    for mode in ["none", "empty", "stale", "current"]:
        n5.kill9()
        if mode == "none":
            extra = []
        else:
            directory = tmp_path / f"n5-{mode}"
            if mode == "empty":
                directory.mkdir()
            elif mode == "stale":
                shutil.copytree(stale, directory)
            else:
                directory = data["n5"]
            extra = ["--data-dir", str(directory)]
        started = time.monotonic()
        n5 = swarm.agent("n5", join=[seed.address], extra=extra, port=n5.port, api_port=n5.api_port)
        if action == "write":
            written = n5.cli("put", f"after/{mode}", "at once")
            assert json.loads(written.stdout)["status"] == "ok", written.stdout
            expected += 1
        else:
            # A read at once is either refused as not ready or right, never a miss.
            answer = n5.cli("get", "n5/7", check=False)
            envelope = json.loads(answer.stdout or answer.stderr)
            assert envelope["status"] == "ok" and envelope["data"]["value"] == "n5-7" or envelope.get("code") == "not_ready", envelope
        _, took = wait_until(lambda: count(n5) == expected and count(n5, "n5/") == KEYS_PER_WRITER, 30,
                             f"n5 ({mode} state, {action} at once) holds every key again", interval=0.1)
        measure(f"restart_{mode}_{action}_catch_up", time.monotonic() - started)
        wait_until(lambda: all(count(a) == expected for a in others), 10, "everyone holds the new write")
        # "in sync" only once the counts match (the fingerprints cover every version).
        wait_until(lambda: in_sync_with_everyone(n5, [a.name for a in others]), 30,
                   f"n5 ({mode}) reports in sync with every peer")
        assert count(n5) == expected
        for key in ["n1/0", "n3/1999", "n5/0", "n5/1999"]:
            value = get(n5, key)
            assert value and value["value"] == key.replace("/", "-"), (mode, key, value)


def generation(agent, name):
    """The process generation `agent` knows member `name` to run (its rumor.gen tag)."""
    members = json.loads(agent.cli("members").stdout)["data"]["members"]
    return next((m["tags"].get("rumor.gen") for m in members if m["name"] == name and m["state"] == "alive"), None)


def test_a_killed_agents_ephemeral_values_never_reappear_in_20_restarts(swarm):
    """Each trial: n3 puts an ephemeral presence, is killed (-9) and restarted without state, at
    once or after the others declared it dead; in some trials n2 restarts too, after n3's death.
    Once a node stops showing the dead process's presence it never shows it again, and once it
    knows n3's new process it shows none."""
    profile = "local"  # failure detection in about a second
    n1 = swarm.agent("n1", profile=profile)
    n2 = swarm.agent("n2", join=[n1.address], profile=profile)
    n3 = swarm.agent("n3", join=[n1.address], profile=profile)
    wait_until(lambda: all(len(a.members()) == 3 for a in (n1, n2, n3)), 10, "three agents")
    for trial in range(20):
        value = f"trial-{trial}"
        n3.cli("put", "presence/n3", value, "--ephemeral")
        wait_until(lambda: all((get(a, "presence/n3") or {}).get("value") == value for a in (n1, n2)), 5,
                   f"trial {trial}: the presence arrives")
        old = generation(n1, "n3")
        n3.kill9()
        slow = trial % 2 == 1
        if slow:
            # What this test holds is that the presence never comes back; how fast a death is
            # detected is the failure-detection tests' bar. 30 s: twice this wait timed out at 15 s
            # after issue 28's backed-off probe timeouts (open there).
            wait_until(lambda: all(get(a, "presence/n3") is None for a in (n1, n2)), 30,
                       f"trial {trial}: the presence vanishes once n3 is declared dead", interval=0.1)
        if trial % 4 == 3:  # n2 restarts without state after n3's departure
            n2.kill9()
            n2 = swarm.agent("n2", join=[n1.address], profile=profile, port=n2.port, api_port=n2.api_port)
        n3 = swarm.agent("n3", join=[n1.address], profile=profile, port=n3.port, api_port=n3.api_port)
        gone = {"n1": slow, "n2": slow or trial % 4 == 3}
        deadline = time.monotonic() + 15
        while True:
            known = all(generation(a, "n3") not in (None, old) for a in (n1, n2))
            for agent in (n1, n2):
                shown = (get(agent, "presence/n3") or {}).get("value")
                if shown is None:
                    gone[agent.name] = True
                assert not (gone[agent.name] and shown == value), f"trial {trial}: {agent.name} shows the dead process's presence again"
                assert not (known and shown == value), f"trial {trial}: {agent.name} knows n3's new process and still shows the old presence"
            if known and all(gone.values()):
                break
            assert time.monotonic() < deadline, f"trial {trial}: n3's new process not known everywhere after 15 s"
            time.sleep(0.05)
