"""Streams across agent restarts: `rumor watch` prints each change once whether its agent comes
back with its change log (clean stop, --data-dir) or without (no --data-dir, or kill -9), and
`rumor events` waits for its agent and goes on with the events sent once it is back."""

import fcntl
import json
import os
import queue
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import rumor_binary, wait_until
from test_replication import get, http, put
from test_watch import Watch


def status(agent):
    return http(agent, "GET", "/v1/kv/status")["data"]


def take_until(watcher, key, timeout=15):
    """Every line the watch prints up to and including the first one for `key`."""
    lines = []
    deadline = time.monotonic() + timeout
    while not lines or lines[-1]["key"] != key:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line for {key} within {timeout} s; got {lines}"
        lines += watcher.take(1, timeout=remaining)
    return lines


@pytest.mark.parametrize("mode", ["no-data-dir, kill -9", "data dir, kill -9", "data dir, clean stop"])
def test_a_watch_across_an_agent_restart_prints_each_change_once(swarm, tmp_path, mode):
    extra = ["--data-dir", str(tmp_path / "w")] if "data dir" in mode else []
    stable = swarm.agent("stable")
    watched = swarm.agent("watched", join=[stable.address], extra=extra)
    wait_until(lambda: len(watched.members()) == 2, 10, "the two agents see each other")
    watcher = Watch(watched, "r/")
    try:
        time.sleep(0.3)  # the watch is open before the writes
        put(watched, "r/1", "one")
        put(stable, "r/2", "two")
        answer = http(watched, "POST", "/v1/kv/put", {"key": "r/ttl", "value": "t", "ttlSeconds": 1})
        assert answer["status"] == "ok", answer
        before = watcher.take(3)
        assert sorted(c["key"] for c in before) == ["r/1", "r/2", "r/ttl"], before
        [expired] = watcher.take(1)
        assert (expired["key"], expired["change"]) == ("r/ttl", "expire"), expired
        epoch = expired["epoch"]

        if "kill" in mode:
            watched.kill9()
        else:
            assert watched.terminate() == 0
        # While the agent is away: a new key and a delete, through the other agent.
        put(stable, "r/3", "three")
        assert http(stable, "POST", "/v1/kv/delete", {"key": "r/1"})["status"] == "ok"
        restarted_at = time.monotonic()
        back = swarm.agent("watched", join=[stable.address], extra=extra, port=watched.port, api_port=watched.api_port)
        wait_until(lambda: get(back, "r/3") and get(back, "r/1") is None, 15, "the restarted agent caught up")
        # Its first anti-entropy round since the start has run (that is when expiries are reported).
        wait_until(lambda: (status(back)["lastSyncedMillisecondsAgo"] or 1e12) < (time.monotonic() - restarted_at) * 1000,
                   15, "the restarted agent synced once")
        put(back, "r/zz-marker", "m")
        after = take_until(watcher, "r/zz-marker")
        printed = sorted((c["key"], c["change"]) for c in after[:-1])
        assert printed == [("r/1", "delete"), ("r/3", "put")], f"{mode}: expected only the changes made while away; got {after}"
        new_epoch = after[-1]["epoch"]
        if mode == "data dir, clean stop":
            assert new_epoch == epoch, "a clean stop keeps the change log's epoch"
        else:
            assert new_epoch != epoch, "a change log started without its predecessor's seqs takes a new epoch"
        watcher.quiet()
    finally:
        watcher.stop()
    stderr = watcher.process.stderr.read()
    assert "waiting for it" in stderr, stderr


def test_resuming_with_another_epoch_is_refused_with_watch_epoch_changed(swarm):
    agent = swarm.agent("epochs")
    put(agent, "k", "v")
    listed = http(agent, "GET", "/v1/kv/list")["data"]
    assert listed["epoch"], listed
    stale = http(agent, "GET", "/v1/kv/watch?" + urllib.parse.urlencode({"from": listed["seq"], "epoch": "not-this-one"}))
    assert stale["code"] == "watch_epoch_changed", stale
    assert "from 0" in stale["hint"], stale
    refused = agent.cli("watch", "--from", str(listed["seq"]), "--epoch", "not-this-one", check=False)
    assert refused.returncode != 0 and json.loads(refused.stderr)["code"] == "watch_epoch_changed", refused
    watcher = Watch(agent, "--from", str(listed["seq"]), "--epoch", listed["epoch"])
    try:
        time.sleep(0.3)
        put(agent, "next", "x")
        [line] = watcher.take(1)
        assert (line["key"], line["epoch"]) == ("next", listed["epoch"])
    finally:
        watcher.stop()


class Events:
    """`rumor events` running as a process; its stdout lines parsed as they arrive."""

    def __init__(self, agent, *args):
        self.process = subprocess.Popen(
            [rumor_binary(), "events", *args, "--api", agent.api, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def names(self):
        names = []
        while not self.lines.empty():
            names.append(self.lines.get()["name"])
        return names

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=5)


def send_until_shown(agent, events, label, timeout=20):
    """Sends events `label-0`, `label-1`… every 0.2 s until the stream shows one; returns the names shown."""
    shown = []
    deadline = time.monotonic() + timeout
    index = 0
    while not any(name.startswith(label) for name in shown):
        assert time.monotonic() < deadline, f"no {label} event shown within {timeout} s; shown: {shown}"
        assert events.process.poll() is None, f"rumor events ended: {events.process.stderr.read()}"
        agent.cli("event", f"{label}-{index}", check=False)
        index += 1
        time.sleep(0.2)
        shown += events.names()
    return shown


def test_events_wait_out_a_kill9_of_their_agent_and_show_events_sent_once_it_is_back(swarm):
    agent = swarm.agent("events")
    events = Events(agent)
    try:
        shown = send_until_shown(agent, events, "before")
        agent.kill9()
        wait_until(lambda: "waiting for it" in stderr_so_far(events), 10, "rumor events notes that it waits for its agent")
        back = swarm.agent("events", port=agent.port, api_port=agent.api_port)
        shown += send_until_shown(back, events, "after")
        assert events.process.poll() is None, "still running"
        assert len(shown) == len(set(shown)), f"an event shown twice: {shown}"
    finally:
        events.stop()
    stderr = stderr_so_far(events)
    assert stderr.count("waiting for it") == 1, stderr
    assert "in progress" not in stderr and "errno" not in stderr, stderr


def stderr_so_far(events):
    """What `rumor events` wrote on stderr so far (read without blocking)."""
    if not hasattr(events, "stderr_text"):
        events.stderr_text = ""
        descriptor = events.process.stderr.fileno()
        fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) | os.O_NONBLOCK)
    try:
        chunk = events.process.stderr.read()
    except (BlockingIOError, TypeError):
        chunk = None
    if chunk:
        events.stderr_text += chunk
    return events.stderr_text


def test_events_with_no_reconnect_end_with_events_ended_and_no_stale_errno(swarm):
    agent = swarm.agent("ends")
    events = Events(agent, "--no-reconnect")
    try:
        send_until_shown(agent, events, "live")
        agent.kill9()
        events.process.wait(timeout=10)
    finally:
        if events.process.poll() is None:
            events.stop()
    assert events.process.returncode == 1
    error = json.loads(events.process.stderr.read())
    assert error["code"] == "events_ended", error
    assert "in progress" not in error["message"] and "errno" not in error["message"], error


def test_mcp_subscriptions_survive_a_kill9_of_the_agent_without_renotifying_unchanged_keys(swarm):
    pytest.importorskip("mcp", reason="pip install mcp (CI installs it)")
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client
    from test_mcp import server

    stable = swarm.agent("stable")
    served = swarm.agent("served", join=[stable.address])
    wait_until(lambda: len(served.members()) == 2, 10, "the two agents see each other")
    put(stable, "task/1", "one")
    put(stable, "task/2", "two")
    wait_until(lambda: get(served, "task/1") and get(served, "task/2"), 10, "the served agent holds both keys")
    updates = []

    async def on_message(message):
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            updates.append(str(root.params.uri))

    async def scenario():
        async with stdio_client(server(served)) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                await session.initialize()
                for key in ("task/1", "task/2", "task/marker"):
                    await session.subscribe_resource(f"rumor://kv/{key}")
                put(stable, "task/marker", "before")
                with anyio.fail_after(10):
                    while "rumor://kv/task/marker" not in updates:
                        await anyio.sleep(0.05)
                updates.clear()

                served.kill9()
                put(stable, "task/2", "changed while the agent was away")
                restarted_at = time.monotonic()
                back = swarm.agent("served", join=[stable.address], port=served.port, api_port=served.api_port)
                wait_until(lambda: (get(back, "task/2") or {}).get("value") == "changed while the agent was away", 15,
                           "the restarted agent caught up")
                wait_until(lambda: (status(back)["lastSyncedMillisecondsAgo"] or 1e12) < (time.monotonic() - restarted_at) * 1000,
                           15, "the restarted agent synced once")
                put(stable, "task/marker", "after")
                with anyio.fail_after(20):
                    while "rumor://kv/task/marker" not in updates:
                        await anyio.sleep(0.05)
                assert updates == ["rumor://kv/task/2", "rumor://kv/task/marker"], updates

    anyio.run(scenario)
