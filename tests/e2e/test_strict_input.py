"""Issue 29's small refusals, on the release binary: a blank API token stops `rumor agent` at
start with a clear error whatever gave it (flag, environment, config file), and JSON is read
strictly (a trailing comma or a key given twice is refused, in a config file and in an API body)."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import free_port, rumor_binary


def start_agent(args, env=None):
    return subprocess.run(
        [rumor_binary(), "agent", "--name", "t", "--bind", f"127.0.0.1:{free_port()}", "--api", f"127.0.0.1:{free_port()}",
         "--json", *args],
        capture_output=True, text=True, timeout=30, env=dict(os.environ, **(env or {})))


def error_of(result):
    assert result.returncode == 64, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("token", ["", " ", "\t"])
def test_a_blank_api_token_is_refused_at_start_from_a_flag(token):
    error = error_of(start_agent(["--api-token", token]))
    assert error["code"] == "bad_arguments" and error["message"].startswith("--api-token is blank"), error
    assert "--api-token" in error["hint"], error


def test_a_blank_api_token_is_refused_from_the_environment_and_the_config_file(tmp_path):
    error = error_of(start_agent([], env={"RUMOR_API_TOKEN": "  "}))
    assert error["message"].startswith("RUMOR_API_TOKEN is blank"), error
    config = tmp_path / "rumor.toml"
    config.write_text('api_token = ""\n')
    error = error_of(start_agent(["--config", str(config)]))
    assert error["message"].startswith(f"api_token in {config} is blank"), error
    padded = error_of(start_agent(["--api-token", " secret"]))
    assert "whitespace" in padded["message"], padded


def test_a_json_config_file_is_read_strictly(tmp_path):
    for text, problem in [('{"name": "a",}', "trailing comma before '}' at line 1, column 14"),
                          ('{"name": "a",\n "name": "b"}', 'duplicate key "name" in one object at line 2, column 2')]:
        config = tmp_path / "rumor.json"
        config.write_text(text)
        result = subprocess.run([rumor_binary(), "agent", "--config", str(config), "--print-config", "--json"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, result.stdout
        error = json.loads(result.stderr.strip().splitlines()[-1])
        assert error["code"] == "bad_config" and problem in error["message"], error


def test_an_api_body_is_read_strictly(swarm):
    agent = swarm.agent("strict")
    for body, problem in [(b'{"key":"k","value":"v",}', "trailing comma"), (b'{"key":"k","value":"v","key":"x"}', 'duplicate key "key"')]:
        request = urllib.request.Request(f"http://{agent.api}/v1/kv/put", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        answer = json.load(refused.value)
        assert answer["code"] == "bad_request" and problem in answer["message"], answer
    assert agent.cli("get", "k", check=False).returncode != 0, "nothing was written"
