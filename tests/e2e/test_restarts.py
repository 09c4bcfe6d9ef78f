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
    stale = tmp_path / "n5-stale"
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
