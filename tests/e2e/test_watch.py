"""Watch streams: NDJSON and server-sent events, resumable by change-log seq."""

import json
import queue
import subprocess
import threading
import time
import urllib.request

from conftest import rumor_binary, wait_until
from test_replication import five, get, http, put


class Watch:
    """`rumor watch` running as a process; its stdout lines parsed as they arrive."""

    def __init__(self, agent, *args):
        self.process = subprocess.Popen(
            [rumor_binary(), "watch", *args, "--api", agent.api, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def take(self, count, timeout=10):
        changes = []
        deadline = time.monotonic() + timeout
        while len(changes) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"got {len(changes)} of {count} changes in {timeout} s: {changes}"
            try:
                changes.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                pass
        return changes

    def quiet(self, seconds=0.5):
        time.sleep(seconds)
        assert self.lines.empty(), f"unexpected change: {self.lines.get()}"

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=5)


def test_watch_streams_puts_deletes_expiry_and_departure_from_every_node(swarm):
    agents = five(swarm)
    watcher = Watch(agents[1], "app/")
    try:
        time.sleep(0.3)  # the watch is open before the writes
        put(agents[0], "app/config", '{"v":1}')
        put(agents[0], "other/ignored", "x")
        http(agents[2], "POST", "/v1/kv/put", {"key": "app/session", "value": "s", "ttlSeconds": 1})
        agents[4].cli("put", "app/presence/n5", "here", "--ephemeral")
        first = watcher.take(3)
        assert {(c["key"], c["change"]) for c in first} == {
            ("app/config", "put"), ("app/session", "put"), ("app/presence/n5", "put")}
        assert next(c for c in first if c["key"] == "app/config")["value"] == '{"v":1}'

        http(agents[3], "POST", "/v1/kv/delete", {"key": "app/config"})
        deleted, expired = sorted(watcher.take(2), key=lambda c: c["key"])
        assert deleted["key"] == "app/config" and deleted["change"] == "delete" and deleted["deleted"]
        assert expired["key"] == "app/session" and expired["change"] == "expire" and "value" not in expired

        agents[4].kill9()
        [departed] = watcher.take(1, timeout=30)
        assert departed["key"] == "app/presence/n5" and departed["change"] == "depart"
        seqs = [c["seq"] for c in first] + [deleted["seq"], expired["seq"], departed["seq"]]
        assert len(set(seqs)) == len(seqs), "every change has its own seq"
        watcher.quiet()
    finally:
        watcher.stop()


def test_watch_resumes_from_a_seq_with_exactly_the_latest_missed_changes(swarm, tmp_path):
    data = tmp_path / "w-data"
    agent = swarm.agent("w", extra=["--data-dir", str(data)])
    put(agent, "k/a", "1")
    put(agent, "k/b", "1")
    watcher = Watch(agent, "k/", "--from", "0")
    try:
        replay = watcher.take(2)
        assert [(c["key"], c["value"]) for c in replay] == [("k/a", "1"), ("k/b", "1")]
        resume_from = replay[-1]["seq"]
    finally:
        watcher.stop()

    # While nobody watches: k/a is rewritten twice, k/b deleted, k/c created.
    put(agent, "k/a", "2")
    put(agent, "k/a", "3")
    http(agent, "POST", "/v1/kv/delete", {"key": "k/b"})
    put(agent, "k/c", "1")
    assert agent.terminate() == 0
    again = swarm.agent("w", extra=["--data-dir", str(data)])  # the change log survives a restart

    resumed = Watch(again, "k/", "--from", str(resume_from))
    try:
        missed = resumed.take(3)
        assert [(c["key"], c["change"], c.get("value")) for c in missed] == [
            ("k/a", "put", "3"), ("k/b", "delete", None), ("k/c", "put", "1")], missed
        resumed.quiet()
        put(again, "k/d", "live")
        [live] = resumed.take(1)
        assert live["key"] == "k/d" and live["seq"] > missed[-1]["seq"]
    finally:
        resumed.stop()


def test_watch_as_server_sent_events_resumes_with_last_event_id(swarm):
    agent = swarm.agent("sse")
    put(agent, "e/1", "one")
    put(agent, "e/2", "two")
    listed = http(agent, "GET", "/v1/kv/list?prefix=e/")["data"]
    request = urllib.request.Request(
        f"http://{agent.api}/v1/kv/watch?prefix=e/",
        headers={"Accept": "text/event-stream", "Last-Event-ID": str(listed["entries"][0]["seq"])})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        event = [response.readline().decode() for _ in range(3)]
    assert event[0] == f"id: {listed['entries'][1]['seq']}\n"
    assert json.loads(event[1].removeprefix("data: "))["key"] == "e/2"
    assert event[2] == "\n"


def test_watch_errors_are_clear(swarm):
    grace = ["--tombstone-grace", "1s"]
    agent = swarm.agent("solo", extra=grace)
    ahead = agent.cli("watch", "--from", "99", check=False)
    assert ahead.returncode == 1 and json.loads(ahead.stderr)["code"] == "watch_ahead"

    put(agent, "gone", "x")
    http(agent, "POST", "/v1/kv/delete", {"key": "gone"})
    wait_until(lambda: json.loads(agent.cli("status").stdout)["data"]["tombstones"] == 0, 10,
               "the tombstone is collected after the grace period")
    compacted = agent.cli("watch", "--from", "1", check=False)  # "gone" was put at 1; its delete is forgotten
    error = json.loads(compacted.stderr)
    assert compacted.returncode == 1 and error["code"] == "watch_compacted", error
    assert "list" in error["hint"]
    # From 0 a reader has seen nothing, so it misses nothing in a forgotten key: the replay opens.
    with urllib.request.urlopen(f"http://{agent.api}/v1/kv/watch?from=0", timeout=5) as replay:
        assert replay.status == 200
    # From the position a list returns, the watch works.
    seq = http(agent, "GET", "/v1/kv/list")["data"]["seq"]
    watcher = Watch(agent, "--from", str(seq))
    try:
        time.sleep(0.3)
        put(agent, "fresh", "y")
        assert watcher.take(1)[0]["key"] == "fresh"
    finally:
        watcher.stop()

    stopped = Watch(agent, "--no-reconnect")
    time.sleep(0.3)
    assert agent.terminate() == 0, "an open watch does not hold up shutdown"
    stopped.process.wait(timeout=5)
    assert stopped.process.returncode == 1
    assert json.loads(stopped.process.stderr.read())["code"] == "watch_ended"
