"""Rumor in a swarm with real Serf agents (Debian's serf, 0.9.4, which prints 0.8.2-dev): Rumor
speaks Serf's delegate version and tags format, so a Serf agent joins a Rumor seed and a Rumor
agent joins a Serf seed; each side lists the other's tags and filters on them; tag changes on
either side reach the other."""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import Process, free_port, measure, wait_until, without_generation


@pytest.fixture(scope="session")
def serf_binary(tmp_path_factory):
    go = shutil.which("go")
    if not go:
        pytest.fail("`go` is not installed: apt-get install golang-go golang-github-hashicorp-serf-dev", pytrace=False)
    out = tmp_path_factory.mktemp("serf") / "serf"
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", GOCACHE=str(out.parent / "cache"))
    result = subprocess.run([go, "build", "-o", str(out), "github.com/hashicorp/serf/cmd/serf"], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"building serf failed:\n{result.stderr}", pytrace=False)
    return str(out)


class SerfAgent(Process):
    def __init__(self, name, log_dir, binary, join=(), tags=None, extra=()):
        self.binary = binary
        self.port = free_port()
        self.rpc = f"127.0.0.1:{free_port()}"
        self.address = f"127.0.0.1:{self.port}"
        args = [binary, "agent", "-node", name, "-bind", self.address, "-rpc-addr", self.rpc, "-log-level", "debug"]
        for key, value in (tags or {}).items():
            args += ["-tag", f"{key}={value}"]
        for seed in join:
            args += ["-join", seed]
        args += list(extra)
        super().__init__(name, args, log_dir)
        wait_until(lambda: "Serf agent running" in self.log_path.read_text() or not self.alive(), 20,
                   f"serf agent {name} starts")
        assert self.alive(), self.log_path.read_text()

    def serf(self, *args):
        # Go's flag parsing stops at the first argument: options go right after the subcommand.
        result = subprocess.run([self.binary, args[0], "-rpc-addr", self.rpc, *args[1:]], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr + result.stdout
        return result.stdout

    def members(self, *filters) -> dict:
        """name -> {status, tags} as `serf members -format json` lists them."""
        listed = json.loads(self.serf("members", "-format", "json", *filters) or '{"members": []}')
        return {m["name"]: {"status": m["status"], "tags": m["tags"], "protocol": m["protocol"]} for m in listed["members"]}


@pytest.fixture
def serf_swarm(swarm, serf_binary, tmp_path):
    started = []

    class Mixed:
        rumor = swarm.agent

        def serf(self, name, **kwargs):
            agent = SerfAgent(name, tmp_path, serf_binary, **kwargs)
            started.append(agent)
            return agent

    yield Mixed()
    for agent in started:
        agent.stop()


def rumor_members(agent, *filters) -> dict:
    envelope = json.loads(agent.cli("members", *filters).stdout)
    return {m["name"]: m for m in envelope["data"]["members"]}


def test_serf_and_rumor_share_a_swarm_and_each_others_tags(serf_swarm):
    r1 = serf_swarm.rumor("r1", extra=["--tag", "role=db", "--tag", "dc=east"])
    s1 = serf_swarm.serf("s1", join=[r1.address], tags={"role": "web", "dc": "east"})  # Serf joins a Rumor seed
    r2 = serf_swarm.rumor("r2", join=[s1.address], extra=["--tag", "role=web"])  # Rumor joins a Serf seed
    s2 = serf_swarm.serf("s2", join=[r2.address], tags={"role": "cache"})
    names = {"r1", "r2", "s1", "s2"}

    def everyone_alive():
        rumor_views = [rumor_members(agent) for agent in (r1, r2)]
        serf_views = [agent.members() for agent in (s1, s2)]
        return all(all(view.get(name, {}).get("state") == "alive" for name in names) for view in rumor_views) and all(
            all(view.get(name, {}).get("status") == "alive" for name in names) for view in serf_views)

    _, seconds = wait_until(everyone_alive, 20, "Rumor and Serf agents all see all four alive")
    measure("serf_mixed_join_all_alive", seconds)

    # Serf lists Rumor nodes with their tags (Rumor's replication and generation tags included),
    # Serf's versions.
    seen = s1.members()
    assert "rumor.gen" in seen["r1"]["tags"], seen
    assert without_generation(seen["r1"]["tags"]) == {"role": "db", "dc": "east", "rumor.kv": "1"}, seen
    assert seen["r1"]["protocol"] == {"max": 5, "min": 2, "version": 5}, seen
    assert set(s2.members("-tag", "role=web")) == {"s1", "r2"}
    assert set(s2.members("-tag", "rumor.kv=1")) == {"r1", "r2"}
    # Rumor lists Serf nodes with theirs, and filters like `serf members` (whole-value regexes).
    listed = rumor_members(r1)
    assert listed["s1"]["tags"] == {"role": "web", "dc": "east"} and listed["s2"]["tags"] == {"role": "cache"}, listed
    assert set(rumor_members(r1, "--tag", "role=web")) == {"s1", "r2"}
    assert set(rumor_members(r1, "--tag", "role=w")) == set()
    assert set(rumor_members(r1, "--tag", "role=w.*", "--tag", "dc=east")) == {"s1"}
    assert set(rumor_members(r2, "--name", "s[0-9]", "--status", "alive")) == {"s1", "s2"}
    text = r1.cli("members", "--tag", "role=cache", check=False)
    assert text.returncode == 0

    # Replication stays among Rumor nodes: a write reaches the other Rumor node, not Serf.
    put = json.loads(r1.cli("put", "k", "v", "--wait", "all").stdout)
    assert sorted(put["data"]["replicas"]) == ["r1", "r2"], put

    # Tag changes travel both ways.
    r2.cli("tags", "set", "role=api", "zone=z1")
    wait_until(lambda: without_generation(s1.members()["r2"]["tags"]) == {"role": "api", "zone": "z1", "rumor.kv": "1"}, 10,
               "Serf sees Rumor's new tags")
    r2.cli("tags", "delete", "zone")
    wait_until(lambda: without_generation(s2.members()["r2"]["tags"]) == {"role": "api", "rumor.kv": "1"}, 10,
               "Serf sees a deleted tag go")
    s2.serf("tags", "-set", "role=queue", "-delete", "dc")
    wait_until(lambda: rumor_members(r1)["s2"]["tags"] == {"role": "queue"}, 10, "Rumor sees Serf's new tags")

    # Serf's push-pull state travels both ways in the join exchanges and is read on both sides.
    for agent in (s1, s2):
        log = agent.log_path.read_text()
        assert "remote state" not in log and "Remote state" not in log, log[-3000:]
    for agent in (r1, r2):
        counters = agent.info()["counters"]
        assert not any(name.startswith("dropped_") for name in counters), counters


def test_bad_tags_get_clear_errors(serf_swarm):
    r1 = serf_swarm.rumor("r1")
    for args, code, words in [
        (("tags", "set", "novalue"), "bad_arguments", "KEY=VALUE"),
        (("tags", "set", "rumor.kv=0"), "bad_request", "Rumor's own"),
        (("tags", "delete", "rumor.kv"), "bad_request", "Rumor's own"),
        (("tags", "set", "big=" + "x" * 600), "tags_too_large", "512"),
        (("members", "--tag", "role"), "bad_request", "KEY=REGEX"),
        (("members", "--tag", "role=(("), "bad_request", "regular expression"),
        (("members", "--status", "sleeping"), "bad_request", "unknown status"),
    ]:
        result = r1.cli(*args, check=False)
        assert result.returncode != 0, args
        error = json.loads(result.stderr or result.stdout)
        assert error["code"] == code and words in error["message"] and error["hint"], (args, error)
    assert without_generation(rumor_members(r1)["r1"]["tags"]) == {"rumor.kv": "1"}


HANDLER = """#!/bin/sh
echo "$SERF_EVENT|$SERF_USER_EVENT|$SERF_USER_LTIME|$(cat)" >> {out}
"""


class EventStream:
    """`rumor events` running against one agent, its lines collected."""

    def __init__(self, agent, path):
        from conftest import rumor_binary
        self.path = path
        self.file = open(path, "wb")
        self.process = subprocess.Popen([rumor_binary(), "events", "--api", agent.api], stdout=self.file,
                                        stderr=subprocess.STDOUT)

    def events(self):
        return [json.loads(line) for line in Path(self.path).read_text().splitlines() if line.startswith("{")]

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.file.close()


def test_user_events_cross_between_serf_and_rumor_and_rumor_leaves_as_serf_does(serf_swarm, tmp_path):
    handled = tmp_path / "handled.txt"
    handler = tmp_path / "handler.sh"
    handler.write_text(HANDLER.format(out=handled))
    handler.chmod(0o755)
    # The same handler script for Serf and Rumor: Serf's handlers run unchanged in Rumor.
    rumor_handled = tmp_path / "rumor-handled.txt"
    rumor_handler = tmp_path / "rumor-handler.sh"
    rumor_handler.write_text(HANDLER.format(out=rumor_handled))
    rumor_handler.chmod(0o755)
    r1 = serf_swarm.rumor("r1", extra=["--event-handler", f"user={rumor_handler}"])
    r2 = serf_swarm.rumor("r2", join=[r1.address])
    s1 = serf_swarm.serf("s1", join=[r1.address], extra=["-event-handler", f"user={handler}"])
    wait_until(lambda: set(rumor_members(r2)) == {"r1", "r2", "s1"} and s1.members().get("r2", {}).get("status") == "alive",
               20, "two Rumor agents and a Serf agent form a swarm")
    watcher = EventStream(r2, tmp_path / "events.ndjson")
    try:
        time.sleep(0.3)  # the stream is open
        # rumor event → the Serf agent's handler, and the other Rumor node's `rumor events`.
        sent = json.loads(r1.cli("event", "deploy", "v1.2").stdout)["data"]
        wait_until(lambda: handled.exists() and f"user|deploy|{sent['ltime']}|v1.2" in handled.read_text(), 10,
                   "the Serf handler runs for Rumor's event")
        wait_until(lambda: any(e["name"] == "deploy" and e["payload"] == "v1.2" for e in watcher.events()), 10,
                   "rumor events on r2 prints Rumor's event")
        # serf event → `rumor events`, once.
        s1.serf("event", "-coalesce=false", "restart", "now")
        wait_until(lambda: any(e["name"] == "restart" and e["payload"] == "now" and not e["coalesce"] for e in watcher.events()),
                   10, "rumor events prints Serf's event")
        wait_until(lambda: rumor_handled.exists() and "user|restart|" in rumor_handled.read_text() and
                   rumor_handled.read_text().rstrip().endswith("|now"), 10, "Serf's event runs the Rumor node's handler")
        time.sleep(1)
        assert sum(1 for e in watcher.events() if e["name"] == "restart") == 1, watcher.events()
        assert rumor_handled.read_text().count("user|restart|") == 1, rumor_handled.read_text()

        # A Rumor node that leaves is `left` in Serf, never `failed` on the way.
        r2.cli("leave")
        wait_until(lambda: s1.members().get("r2", {}).get("status") == "left", 10, "Serf lists the Rumor node as left")
        log = s1.log_path.read_text()
        assert "EventMemberLeave: r2" in log and "EventMemberFailed: r2" not in log, log[-3000:]

        # Beyond Serf: an event past 512 bytes goes straight to the Rumor nodes (Serf agents
        # cannot take it, which r1 logs); an event to one node by name reaches only that node.
        r3 = serf_swarm.rumor("r3", join=[r1.address])
        wait_until(lambda: "r3" in rumor_members(r1) and rumor_members(r1)["r3"]["state"] == "alive", 10, "r3 joins")
        watcher3 = EventStream(r3, tmp_path / "events3.ndjson")
        try:
            time.sleep(0.3)
            r1.cli("event", "big", "x" * 60_000)
            wait_until(lambda: any(e["name"] == "big" and len(e["payload"]) == 60_000 for e in watcher3.events()), 10,
                       "a 60 kB event reaches the other Rumor node (over a stream)")
            assert "past Serf's 512 bytes" in r1.log_path.read_text()
            r1.cli("event", "only-r3", "hi", "--node", "r3")
            wait_until(lambda: any(e["name"] == "only-r3" for e in watcher3.events()), 10, "the event to r3 reaches r3")
            time.sleep(1)
            assert not (handled.read_text().count("big") or "only-r3" in handled.read_text()), handled.read_text()
            assert not any(e["name"] in ("only-r3",) for e in watcher.events()), "r2 left; nobody else gets it"
            assert rumor_handled.read_text().count("only-r3") == 0, "r1 did not name itself"
        finally:
            watcher3.stop()
        for args, code in ((["big", "--node", "s1"], "unknown_node"), (["big", "--node", "nobody"], "unknown_node"),
                           (["", "x"], "bad_request")):
            result = r1.cli("event", *args, check=False)
            error = json.loads(result.stderr or result.stdout)
            assert result.returncode != 0 and error["code"] == code, (args, error)
        request = urllib.request.Request(f"http://{r1.api}/v1/event", method="POST",
                                         data=json.dumps({"name": "huge", "payload": "x" * (1 << 20)}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("a 1 MiB event was accepted")
        except urllib.error.HTTPError as error:
            body = json.loads(error.read())
            assert error.code == 400 and body["code"] == "event_too_large", body
    finally:
        watcher.stop()


QUERY_HANDLER = """#!/bin/sh
echo "$SERF_QUERY_NAME from $SERF_SELF_NAME: $(cat)"
"""


def serf_query(agent, *args) -> dict:
    """`serf query -format json`: {"Acks": [...] or None, "Responses": {node: payload}}."""
    return json.loads(agent.serf("query", "-format", "json", *args))


def rumor_query(agent, *args) -> tuple[set, dict]:
    """`rumor query --json`: the nodes that acknowledged, and the responses by node."""
    lines = [json.loads(line) for line in agent.cli("query", "--json", *args).stdout.splitlines()]
    assert lines[0]["type"] == "dispatched" and lines[-1]["type"] == "done", lines
    acks = {line["from"] for line in lines if line["type"] == "ack"}
    responses = {line["from"]: line["payload"] for line in lines if line["type"] == "response"}
    assert lines[-1]["acks"] == len(acks) and lines[-1]["responses"] == len(responses), lines
    return acks, responses


def test_queries_cross_between_serf_and_rumor_with_filters(serf_swarm, tmp_path):
    handler = tmp_path / "query.sh"
    handler.write_text(QUERY_HANDLER)
    handler.chmod(0o755)
    # The same handler script answers under Serf and under Rumor.
    big = tmp_path / "big.sh"
    big.write_text("#!/bin/sh\nhead -c 3000 /dev/zero | tr '\\0' x\n")
    big.chmod(0o755)
    r1 = serf_swarm.rumor("r1", extra=["--tag", "role=web", "--event-handler", f"query:uptime={handler}",
                                       "--event-handler", f"query:big={big}"])
    r2 = serf_swarm.rumor("r2", join=[r1.address], extra=["--tag", "role=db", "--event-handler", f"query={handler}"])
    s1 = serf_swarm.serf("s1", join=[r1.address], tags={"role": "web"}, extra=["-event-handler", f"query:uptime={handler}"])
    s2 = serf_swarm.serf("s2", join=[s1.address], tags={"role": "db"})
    wait_until(lambda: set(rumor_members(r2)) == {"r1", "r2", "s1", "s2"} and
               all(m["status"] == "alive" for m in s2.members().values()) and len(s2.members()) == 4, 20,
               "two Rumor agents and two Serf agents form a swarm")

    # serf query, tag filter: answered by the Rumor handler and the Serf one; r2 and s2 stay out.
    watcher = EventStream(r1, tmp_path / "events.ndjson")
    time.sleep(0.3)
    answer = serf_query(s2, "-tag", "role=web", "-timeout", "2s", "uptime", "now")
    assert any(e["event"] == "query" and e["name"] == "uptime" and e["payload"] == "now" for e in watcher.events()), \
        "rumor events shows the query"
    watcher.stop()
    assert sorted(answer["Acks"]) == ["r1", "s1"], answer
    assert answer["Responses"] == {"r1": "uptime from r1: now\n", "s1": "uptime from s1: now\n"}, answer

    # rumor query, tag filter: the same two, Serf's handler included.
    acks, responses = rumor_query(r2, "uptime", "later", "--tag", "role=web", "--timeout", "2s")
    assert acks == {"r1", "s1"} and responses == {"r1": "uptime from r1: later\n", "s1": "uptime from s1: later\n"}, responses

    # No filter: every node acknowledges; only nodes with a handler for the name respond.
    acks, responses = rumor_query(r1, "uptime", "--timeout", "2s")
    assert acks == {"r1", "r2", "s1", "s2"} and set(responses) == {"r1", "r2", "s1"}, (acks, responses)

    # A node filter, from Serf to a Rumor node; relayed copies are counted once.
    answer = serf_query(s1, "-node", "r2", "-relay-factor", "2", "-timeout", "2s", "stats")
    assert answer["Acks"] == ["r2"] and answer["Responses"] == {"r2": "stats from r2: \n"}, answer
    acks, responses = rumor_query(r1, "stats", "--node", "r2", "--relay-factor", "2", "--timeout", "2s")
    assert acks == {"r2"} and responses == {"r2": "stats from r2: \n"}, (acks, responses)

    # A response past Serf's 1024 bytes: a Serf querier gets only the ack (the responder logs
    # why); a Rumor querier gets it in a Rumor frame.
    answer = serf_query(s1, "-node", "r1", "-timeout", "1s", "big")
    assert answer["Acks"] == ["r1"] and answer["Responses"] == {}, answer
    wait_until(lambda: "query response not sent: it exceeds Serf's limit" in r1.log_path.read_text(), 5,
               "the oversized response to Serf is logged")
    acks, responses = rumor_query(r2, "big", "--node", "r1", "--timeout", "1s")
    assert acks == {"r1"} and responses == {"r1": "x" * 3000}, {k: len(v) for k, v in responses.items()}

    # Serf's text output, as `serf query` prints it.
    from conftest import rumor_binary
    text = subprocess.run([rumor_binary(), "query", "uptime", "--node", "s1", "--timeout", "1s", "--api", r2.api],
                          capture_output=True, text=True, timeout=10).stdout
    assert text == "Query 'uptime' dispatched\nAck from 's1'\nResponse from 's1': uptime from s1: \nTotal Acks: 1\nTotal Responses: 1\n", text

    # Bad input.
    for args, code in ((["_serf_ping"], "bad_request"), (["q", "--tag", "role=("], "bad_request"),
                       (["q", "x" * 1100], "query_too_large"), (["q", "--relay-factor", "9"], "bad_arguments"),
                       (["q", "--timeout", "0"], "bad_arguments")):
        result = r1.cli("query", *args, check=False)
        assert result.returncode != 0, (args, result.stdout)
        error = json.loads(result.stderr or result.stdout)
        assert error["code"] == code, (args, error)


def test_an_encrypted_mixed_swarm_rotates_its_key_with_rumor_keys_and_serf_keys(serf_swarm):
    from test_security import keygen
    first, second, third = keygen(), keygen(), keygen()
    r1 = serf_swarm.rumor("r1", extra=["--encrypt", first])
    r2 = serf_swarm.rumor("r2", join=[r1.address], extra=["--encrypt", first])
    s1 = serf_swarm.serf("s1", join=[r1.address], extra=["-encrypt", first])
    s2 = serf_swarm.serf("s2", join=[s1.address], extra=["-encrypt", first])
    names = {"r1", "r2", "s1", "s2"}
    wait_until(lambda: set(rumor_members(r2)) == names and len(s2.members()) == 4 and
               all(m["status"] == "alive" for m in s2.members().values()), 20, "an encrypted mixed swarm of four")

    def serf_keys(agent):
        """`serf keys -list`: key -> how many nodes hold it."""
        listed = {}
        for line in agent.serf("keys", "-list").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].startswith("[") and parts[1].endswith("]"):
                listed[parts[0]] = int(parts[1][1:-1].split("/")[0])
        return listed

    # rumor keys, over Rumor nodes and Serf nodes alike.
    for operation in ("install", "use"):
        report = json.loads(r1.cli("keys", operation, second).stdout)["data"]
        assert report["nodes"] == 4 and report["responded"] == 4 and not report["failures"], report
    assert serf_keys(s2) == {first: 4, second: 4}, s2.serf("keys", "-list")
    report = json.loads(r2.cli("keys", "remove", first).stdout)["data"]
    assert report["responded"] == 4 and not report["failures"], report
    report = json.loads(r2.cli("keys", "list").stdout)["data"]
    assert report["keys"] == {second: 4} and report["primaryKeys"] == {second: 4}, report

    # serf keys, Rumor nodes included.
    for operation in ("-install", "-use"):
        s1.serf("keys", operation, third)
    s1.serf("keys", "-remove", second)
    report = json.loads(r1.cli("keys", "list").stdout)["data"]
    assert report["keys"] == {third: 4} and report["primaryKeys"] == {third: 4}, report

    # Gossip still flows with the third key only; no member ever failed.
    time.sleep(2)
    assert all(m["status"] == "alive" for m in s2.members().values()) and len(s2.members()) == 4
    assert all(state == "alive" for state in r1.members().values()), r1.members()
    for agent in (s1, s2):
        assert "EventMemberFailed" not in agent.log_path.read_text(), agent.log_path.read_text()[-3000:]
    for agent in (r1, r2):
        log = agent.log_path.read_text()
        assert "member failed" not in log and "member suspected" not in log, log[-3000:]
    # Serf's answer to a Rumor node's bad request is an error, not a crash.
    result = r1.cli("keys", "remove", third, check=False)
    assert result.returncode != 0 and json.loads(result.stderr or result.stdout)["code"] in ("bad_key", "keyring_partial")
