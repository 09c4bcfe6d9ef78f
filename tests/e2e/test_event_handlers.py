"""Serf-style event handlers in Rumor (`--event-handler [FILTER=]SCRIPT`): Serf's filters,
environment and stdin, so Serf handler scripts run unchanged; a handler that hangs is killed at
the handler timeout and one that fails is reported, and neither holds gossip up."""

import json
import re
import time

from conftest import measure, wait_until

RECORD = """#!/bin/sh
{{ echo "event=$SERF_EVENT self=$SERF_SELF_NAME role=$SERF_SELF_ROLE dc=$SERF_TAG_DC user=$SERF_USER_EVENT ltime=$SERF_USER_LTIME"; cat; echo "--"; }} >> {out}
"""


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_handlers_get_serfs_environment_stdin_and_filters(swarm, tmp_path):
    out = tmp_path / "handled.txt"
    record = script(tmp_path, "record.sh", RECORD.format(out=out))
    a = swarm.agent("h-a", extra=["--tag", "role=web", "--tag", "dc=east", "--event-handler", f"member-join,member-leave,user:deploy={record}"])
    b = swarm.agent("h-b", join=[a.address], extra=["--tag", "role=db"])
    wait_until(lambda: out.exists() and "event=member-join" in out.read_text(), 10, "the member-join handler runs")
    text = out.read_text()
    assert "self=h-a role=web dc=east" in text, text
    assert re.search(r"h-b\t127\.0\.0\.1\tdb\trole=db,rumor\.gen=[0-9a-f]{16},rumor\.kv=1\n", text), text

    b.cli("event", "deploy", "v1.2")
    b.cli("event", "other", "ignored")  # not in the filter
    wait_until(lambda: "event=user" in out.read_text(), 10, "the user:deploy handler runs")
    text = out.read_text()
    assert "user=deploy ltime=1\nv1.2\n--" in text, text
    assert "other" not in text, text

    b.cli("leave")
    wait_until(lambda: "event=member-leave" in out.read_text(), 10, "the member-leave handler runs")
    # A run is counted once its script has exited, a moment after it wrote the file.
    wait_until(lambda: a.info()["counters"].get("event_handler_runs", 0) >= 3, 5,
               "three handler runs counted (member-join, user:deploy, member-leave)")


def test_a_hanging_handler_is_killed_and_a_failing_one_reported_without_stalling_gossip(swarm, tmp_path):
    marker = tmp_path / "child-alive"
    hang = script(tmp_path, "hang.sh", f"#!/bin/sh\n(sleep 30; touch {marker}) &\nsleep 30\n")
    fail = script(tmp_path, "fail.sh", "#!/bin/sh\necho broken >&2\nexit 3\n")
    a = swarm.agent("k-a", extra=["--event-handler", f"user:hang={hang}", "--event-handler", f"user:fail={fail}",
                                  "--handler-timeout", "1s"])
    b = swarm.agent("k-b", join=[a.address])
    wait_until(lambda: a.members().get("k-b") == "alive", 10, "the pair forms")
    started = time.monotonic()
    b.cli("event", "hang")
    # Gossip goes on while the handler hangs: a write replicates at once.
    put = json.loads(b.cli("put", "during", "hang", "--wait", "all").stdout)
    assert sorted(put["data"]["replicas"]) == ["k-a", "k-b"], put
    assert time.monotonic() - started < 1.0
    wait_until(lambda: "event handler killed" in a.log_path.read_text(), 10, "the hanging handler is killed at 1 s")
    b.cli("event", "fail")
    wait_until(lambda: "event handler failed" in a.log_path.read_text(), 10, "the failing handler is reported")
    log = a.log_path.read_text()
    assert "status=3" in log and "broken" in log, log[-2000:]
    counters = a.info()["counters"]
    assert counters.get("event_handler_timeouts") == 1 and counters.get("event_handler_failures") == 1, counters
    time.sleep(0.5)
    assert not marker.exists(), "the killed handler's children were killed too"
    measure("handler_timeout_kill", 1.0)


def test_bad_handlers_are_refused_at_start(tmp_path):
    import subprocess
    from conftest import rumor_binary
    for value, words in [("member-joined=./x.sh", "not one of Serf's"), ("user:deploy=", "has no script"),
                         ("member-join:x=./x.sh", "not one of Serf's")]:
        result = subprocess.run([rumor_binary(), "agent", "--name", "x", "--event-handler", value, "--json"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, value
        error = json.loads([line for line in (result.stderr + result.stdout).splitlines() if line.startswith("{")][-1])
        assert error["code"] == "bad_arguments" and words in error["message"] and error["hint"], (value, error)


def test_monitor_streams_the_agents_log_live_at_the_asked_level(swarm, tmp_path):
    import subprocess
    from conftest import rumor_binary
    a = swarm.agent("m-a")
    out = tmp_path / "monitor.txt"
    warnings = tmp_path / "warnings.txt"
    with open(out, "wb") as info_file, open(warnings, "wb") as warning_file:
        info = subprocess.Popen([rumor_binary(), "monitor", "--api", a.api], stdout=info_file, stderr=subprocess.STDOUT)
        warning = subprocess.Popen([rumor_binary(), "monitor", "--api", a.api, "--log-level", "warning"], stdout=warning_file,
                                   stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            swarm.agent("m-b", join=[a.address])
            a.cli("tags", "set", "role=monitored")
            wait_until(lambda: "member joined" in out.read_text() and "tags changed" in out.read_text(), 10,
                       "rumor monitor prints the agent's log lines as they are written")
            assert "member=m-b" in out.read_text()
            assert warnings.read_text() == "", warnings.read_text()
        finally:
            info.kill()
            warning.kill()
    bad = subprocess.run([rumor_binary(), "monitor", "--api", a.api, "--log-level", "loud", "--json"], capture_output=True, text=True)
    error = json.loads(bad.stderr or bad.stdout)
    assert bad.returncode != 0 and error["code"] == "bad_request" and "loud" in error["message"], error


def test_query_handlers_answer_with_their_output_only_when_they_succeed_and_fit(swarm, tmp_path):
    """Serf's contract for query handlers: the output (stdout and stderr) of a handler that exits 0
    is the response; a failing handler or a silent one sends only the acknowledgement. Between
    Rumor nodes a response past Serf's 1024 bytes travels in a Rumor frame."""
    answer = script(tmp_path, "answer.sh", "#!/bin/sh\necho \"q=$SERF_QUERY_NAME ltime=$SERF_QUERY_LTIME in=$(cat)\"\necho warn >&2\n")
    fail = script(tmp_path, "fail.sh", "#!/bin/sh\necho no\nexit 2\n")
    silent = script(tmp_path, "silent.sh", "#!/bin/sh\ntrue\n")
    big = script(tmp_path, "big.sh", "#!/bin/sh\nhead -c 3000 /dev/zero | tr '\\0' x\n")
    a = swarm.agent("q-a", extra=["--event-handler", f"query:ask={answer}", "--event-handler", f"query:fail={fail}",
                                  "--event-handler", f"query:silent={silent}", "--event-handler", f"query:big={big}"])
    b = swarm.agent("q-b", join=[a.address])
    wait_until(lambda: a.members().get("q-b") == "alive", 10, "the pair forms")

    def ask(name, *args):
        lines = [json.loads(line) for line in b.cli("query", name, *args, "--timeout", "1s").stdout.splitlines()]
        return ({line["from"] for line in lines if line["type"] == "ack"},
                {line["from"]: line["payload"] for line in lines if line["type"] == "response"}, lines[0])

    started = time.monotonic()
    acks, responses, dispatched = ask("ask", "hello")
    assert acks == {"q-a", "q-b"} and responses == {"q-a": f"q=ask ltime={dispatched['ltime']} in=hello\nwarn\n"}, responses
    assert time.monotonic() - started < 2.5
    for name in ("fail", "silent"):
        acks, responses, _ = ask(name)
        assert acks == {"q-a", "q-b"} and responses == {}, (name, responses)
    acks, responses, _ = ask("big")
    assert acks == {"q-a", "q-b"} and responses == {"q-a": "x" * 3000}, {k: len(v) for k, v in responses.items()}


def test_a_burst_of_coalesced_events_runs_the_handler_once_with_the_latest(swarm, tmp_path):
    """Serf's coalescing: events sent with --coalesce are batched per name (1 s after the last, at
    most 3 s) and only the latest runs the handler; events without it run at once, each."""
    out = tmp_path / "handled.txt"
    record = script(tmp_path, "record.sh", f"#!/bin/sh\necho \"$SERF_USER_EVENT $(cat)\" >> {out}\n")
    a = swarm.agent("c-a", extra=["--event-handler", f"user={record}"])
    b = swarm.agent("c-b", join=[a.address])
    wait_until(lambda: a.members().get("c-b") == "alive", 10, "the pair forms")
    for payload in ("p1", "p2", "p3"):
        b.cli("event", "deploy", payload, "--coalesce")
    for payload in ("r1", "r2"):
        b.cli("event", "restart", payload)
    wait_until(lambda: out.exists() and "restart r2" in out.read_text(), 5, "uncoalesced events run at once")
    assert "deploy" not in out.read_text(), out.read_text()
    wait_until(lambda: "deploy" in out.read_text(), 5, "the coalesced batch runs")
    time.sleep(1.5)
    lines = out.read_text().splitlines()
    assert [line for line in lines if line.startswith("deploy")] == ["deploy p3"], lines
    assert [line for line in lines if line.startswith("restart")] == ["restart r1", "restart r2"], lines
