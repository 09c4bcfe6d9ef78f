"""CLI errors are clear: code, message and hint (JSON with --json), exit status 1."""

import json
import subprocess

from conftest import free_port, rumor_binary


def run(*args):
    return subprocess.run([rumor_binary(), *args], capture_output=True, text=True, timeout=30)


def test_agent_not_running_gives_agent_unreachable():
    result = run("members", "--api", f"127.0.0.1:{free_port()}", "--json")
    assert result.returncode == 1
    error = json.loads(result.stderr)
    assert error["status"] == "error" and error["code"] == "agent_unreachable"
    assert "rumor agent" in error["hint"]


def test_unknown_flag_gives_bad_arguments_in_json_mode():
    result = run("members", "--frobnicate", "--json")
    assert result.returncode == 1
    error = json.loads(result.stderr)
    assert error["code"] == "bad_arguments" and error["message"] and error["hint"]


def test_bad_bind_address_is_rejected_before_starting():
    result = run("agent", "--name", "x", "--bind", "127.0.0.1:99999", "--json")
    assert result.returncode == 1
    assert json.loads(result.stderr)["code"] == "bad_arguments"


def test_non_loopback_api_without_token_is_refused():
    result = run("agent", "--name", "x", "--bind", f"127.0.0.1:{free_port()}", "--api", "0.0.0.0:7999", "--json")
    assert result.returncode == 1
    error = json.loads(result.stderr)
    assert error["code"] == "bad_arguments" and "token" in error["hint"]


def test_human_errors_have_error_and_hint_lines():
    result = run("info", "--api", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
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
