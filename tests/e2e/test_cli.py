"""CLI errors are clear: code, message and hint (JSON with --json), and the exit status of the
one table (`ExitStatus`: 1 agent error, 64 usage, 69 unreachable, 76 not an agent's API)."""

import json
import os
import re
import socket
import subprocess

from conftest import free_port, rumor_binary, wait_until


def run(*args):
    return subprocess.run([rumor_binary(), *args], capture_output=True, text=True, timeout=30)


def test_agent_not_running_gives_agent_unreachable():
    result = run("members", "--api", f"127.0.0.1:{free_port()}", "--json")
    assert result.returncode == 69
    error = json.loads(result.stderr)
    assert error["status"] == "error" and error["code"] == "agent_unreachable"
    assert "rumor agent" in error["hint"]


def test_unknown_flag_gives_bad_arguments_in_json_mode():
    result = run("members", "--frobnicate", "--json")
    assert result.returncode == 64
    error = json.loads(result.stderr)
    assert error["code"] == "bad_arguments" and error["message"] and error["hint"]


def test_bad_bind_address_is_rejected_before_starting():
    result = run("agent", "--name", "x", "--bind", "127.0.0.1:99999", "--json")
    assert result.returncode == 64
    assert json.loads(result.stderr)["code"] == "bad_arguments"


def test_non_loopback_api_without_token_is_refused():
    result = run("agent", "--name", "x", "--bind", f"127.0.0.1:{free_port()}", "--api", "0.0.0.0:7999", "--json")
    assert result.returncode == 64
    error = json.loads(result.stderr)
    assert error["code"] == "bad_arguments" and "token" in error["hint"]


def test_human_errors_have_error_and_hint_lines():
    result = run("info", "--api", f"127.0.0.1:{free_port()}")
    assert result.returncode == 69
    assert result.stderr.startswith("error: ") and "\nhint: " in result.stderr


def test_data_dir_is_created_owner_only(tmp_path):
    import os
    import signal
    import time

    from conftest import wait_until
    data = tmp_path / "nested" / "data"
    port, api = free_port(), free_port()
    agent = subprocess.Popen(
        [rumor_binary(), "agent", "--name", "d", "--bind", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api}",
         "--data-dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: data.is_dir(), 10, "the agent creates its data directory")
        assert os.stat(data).st_mode & 0o777 == 0o700
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=15)


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run("agent", "--name", "x", "--bind", f"127.0.0.1:{free_port()}", "--api", f"127.0.0.1:{free_port()}",
                 "--data-dir", str(blocker / "sub"), "--json")
    assert result.returncode == 1
    assert json.loads(result.stderr)["code"] == "bad_config"


def last_json_line(stderr):
    """The error envelope: the last line of stderr (an agent logs to stderr before it)."""
    return json.loads(stderr.strip().splitlines()[-1])


def test_usage_errors_exit_64_for_every_command_in_text_and_json_mode():
    api = f"127.0.0.1:{free_port()}"  # nothing listens: a usage error is found before any request
    cases = [
        ["put"], ["put", "k"], ["get"], ["delete"], ["join"], ["tags", "set"], ["event"], ["query"],
        ["keys", "install"], ["members", "--frobnicate"], ["put", "k", "v", "--wait", "most"],
        ["put", "k", "v", "--ttl", "-5"], ["delete", "k", "--wait", "-1"], ["watch", "--from", "-5"],
        ["query", "q", "--relay-factor", "-1"],
    ]
    for args in cases:
        text = run(*args, "--api", api)
        assert text.returncode == 64, (args, text.returncode, text.stderr)
        as_json = run(*args, "--api", api, "--json")
        assert as_json.returncode == 64, (args, as_json.returncode, as_json.stderr)
        error = json.loads(as_json.stderr)
        assert error["code"] == "bad_arguments" and error["message"] and error["hint"], (args, error)
        assert "Missing value" not in text.stderr + as_json.stderr, (args, text.stderr)


def test_a_negative_number_names_the_flag_and_the_accepted_range():
    api = f"127.0.0.1:{free_port()}"
    watch = json.loads(run("watch", "--from", "-5", "--api", api, "--json").stderr)
    assert "--from" in watch["message"] and "'-5'" in watch["message"] and "from 0 to" in watch["message"], watch
    ttl = json.loads(run("put", "k", "v", "--ttl", "-5", "--api", api, "--json").stderr)
    assert ttl["message"].startswith("--ttl: ") and "positive" in ttl["message"], ttl
    relay = json.loads(run("query", "q", "--relay-factor", "-1", "--api", api, "--json").stderr)
    assert "--relay-factor" in relay["message"] and "0 to 5" in relay["message"], relay
    limit = run("agent", "--name", "x", "--direct-push-limit", "-5", "--json")
    assert limit.returncode == 64 and "--direct-push-limit '-5' is not a positive count" in last_json_line(limit.stderr)["message"]


def test_api_pointed_at_a_gossip_port_says_so_without_a_stale_errno_and_adds_no_member(swarm):
    agent = swarm.agent("gossip")
    for command in (["members"], ["events"], ["watch"]):
        for mode in ([], ["--json"]):
            result = run(*command, "--api", agent.address, *mode)
            assert result.returncode == 76, (command, mode, result.returncode, result.stderr)
            assert "Operation now in progress" not in result.stderr, result.stderr
            message = json.loads(result.stderr)["message"] if mode else result.stderr
            assert f"{agent.address} answered, but not as a Rumor agent's API" in message, message
            assert "gossip port" in message and "127.0.0.1:7373" in message, message
            if mode:
                assert json.loads(result.stderr)["code"] == "bad_response"
    assert agent.members() == {"gossip": "alive"}, "a CLI at the gossip port leaves no member behind"


def test_a_taken_api_port_stops_the_agent_before_it_joins_naming_the_address_and_where_it_came_from(swarm, tmp_path):
    seed = swarm.agent("seed")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = f"127.0.0.1:{holder.getsockname()[1]}"
    config = tmp_path / "agent.toml"
    config.write_text(f'api = "{taken}"\n')
    cases = [
        (["--api", taken], {}, "--api"),
        ([], {"RUMOR_API": taken}, "RUMOR_API"),
        (["--config", str(config)], {}, f"api in {config}"),
    ]
    try:
        for index, (args, env, origin) in enumerate(cases):
            result = subprocess.run(
                [rumor_binary(), "agent", "--name", f"phantom{index}", "--bind", f"127.0.0.1:{free_port()}",
                 "--join", seed.address, "--json", *args],
                env=dict(os.environ, **env), capture_output=True, text=True, timeout=30)
            assert result.returncode == 1, (origin, result.stderr)
            error = last_json_line(result.stderr)
            assert error["code"] == "bind_failed", error
            assert f"the local API on {taken} (from {origin}): Address already in use" in error["message"], error
            assert "another process listens there" in error["hint"], error
            assert "rumor agent started" not in result.stderr, "the agent failed before announcing itself"
        text = subprocess.run(
            [rumor_binary(), "agent", "--name", "phantom-text", "--bind", f"127.0.0.1:{free_port()}", "--api", taken,
             "--join", seed.address], capture_output=True, text=True, timeout=30)
        assert text.returncode == 1 and f"error: cannot listen for the local API on {taken} (from --api)" in text.stderr
    finally:
        holder.close()
    # No phantom: a node that joins after them is listed by the seed, and they never were.
    witness = swarm.agent("witness", join=[seed.address])
    wait_until(lambda: seed.members().get("witness") == "alive", 10, "the seed lists a node that joined after")
    wait_until(lambda: witness.members().get("seed") == "alive", 10, "the later node lists the seed")
    assert set(seed.members()) == {"seed", "witness"}, seed.members()
    assert set(witness.members()) == {"seed", "witness"}, witness.members()


def test_a_taken_gossip_port_names_the_socket_the_address_and_its_origin(swarm):
    other = swarm.agent("holder")
    result = run("agent", "--name", "late", "--bind", other.address, "--api", f"127.0.0.1:{free_port()}", "--json")
    assert result.returncode == 1, result.stderr
    error = last_json_line(result.stderr)
    assert error["code"] == "bind_failed", error
    # The UDP socket binds with SO_REUSEADDR, so the TCP listener is the one that finds the port taken.
    assert re.search(rf"cannot listen for gossip \((UDP|TCP)\) on {re.escape(other.address)} \(from --bind\): "
                     "Address already in use", error["message"]), error
    environment = subprocess.run(
        [rumor_binary(), "agent", "--name", "late", "--api", f"127.0.0.1:{free_port()}", "--json"],
        env=dict(os.environ, RUMOR_BIND=other.address), capture_output=True, text=True, timeout=30)
    assert "(from RUMOR_BIND)" in last_json_line(environment.stderr)["message"], environment.stderr
