"""`rumor agent --config FILE` (TOML or JSON): an agent runs from a file alone; flags beat
environment variables, which beat the file, which beats defaults; `--print-config` shows each
value's source; unknown keys and wrong types stop the agent before it starts, naming key and file."""

import json
import os
import subprocess

from conftest import Process, free_port, rumor_binary, wait_until, without_generation


def agent_config(args, env=None):
    result = subprocess.run(
        [rumor_binary(), "agent", *args], capture_output=True, text=True, timeout=30, env=dict(os.environ, **(env or {}))
    )
    return result


def test_an_agent_runs_from_a_toml_file(tmp_path):
    port, api_port = free_port(), free_port()
    config = tmp_path / "rumor.toml"
    config.write_text(
        f'name = "from-file"\nbind = "127.0.0.1:{port}"\napi = "127.0.0.1:{api_port}"\n'
        f'swarm = "cfg"\nprofile = "local"\n\n[tags]\nrole = "worker"\n'
    )
    agent = Process("from-file", [rumor_binary(), "agent", "--config", str(config)], tmp_path)
    try:
        api = f"127.0.0.1:{api_port}"

        def info():
            result = subprocess.run([rumor_binary(), "info", "--api", api, "--json"], capture_output=True, text=True, timeout=10)
            return json.loads(result.stdout)["data"] if result.returncode == 0 else None

        data, _ = wait_until(info, 20, "the agent configured by file serves its API")
        assert data["name"] == "from-file"
        members = json.loads(subprocess.run(
            [rumor_binary(), "members", "--api", api, "--json"], capture_output=True, text=True, timeout=10).stdout)
        assert without_generation(members["data"]["members"][0]["tags"]) == {"role": "worker", "rumor.kv": "1"}, members
    finally:
        agent.stop()


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path):
    config = tmp_path / "rumor.json"
    config.write_text(json.dumps({"name": "file", "swarm": "file", "bind": "127.0.0.1:7001", "join": ["127.0.0.1:9"],
                                  "direct_push_limit": 8, "api_token": "from-file-secret"}))
    result = agent_config(["--config", str(config), "--name", "flag", "--print-config", "--json"],
                          env={"RUMOR_NAME": "env", "RUMOR_SWARM": "env"})
    assert result.returncode == 0, result.stderr
    settings = {row["key"]: row for row in json.loads(result.stdout)["data"]["settings"]}
    assert (settings["name"]["value"], settings["name"]["source"]) == ("flag", "flag")
    assert (settings["swarm"]["value"], settings["swarm"]["source"]) == ("env", "environment")
    assert (settings["bind"]["value"], settings["bind"]["source"]) == ("127.0.0.1:7001", f"file {config}")
    assert settings["join"]["value"] == ["127.0.0.1:9"]
    assert settings["direct_push_limit"]["value"] == 8
    assert (settings["api"]["value"], settings["api"]["source"]) == ("127.0.0.1:7373", "default")
    assert "advertise" in settings and "value" not in settings["advertise"]
    assert "from-file-secret" not in result.stdout

    # RUMOR_CONFIG names the file too; the text form is TOML that reads back as a config file.
    text = agent_config(["--print-config"], env={"RUMOR_CONFIG": str(config)})
    assert text.returncode == 0, text.stderr
    assert f'swarm = "file"  # file {config}' in text.stdout
    printed = tmp_path / "printed.toml"
    printed.write_text(text.stdout.replace('"(hidden)"', '"another-token"'))
    reread = agent_config(["--config", str(printed), "--print-config", "--json"])
    assert reread.returncode == 0, reread.stderr
    again = {row["key"]: row.get("value") for row in json.loads(reread.stdout)["data"]["settings"]}
    assert again["swarm"] == "file" and again["join"] == ["127.0.0.1:9"] and again["direct_push_limit"] == 8


def test_bad_config_files_stop_the_agent_naming_key_and_file(tmp_path):
    cases = {
        "unknown.toml": ('bnd = "127.0.0.1:7946"\n', "unknown key 'bnd'"),
        "type.toml": ('join = "127.0.0.1:7946"\n', "join must be an array of strings, not a string"),
        "count.json": ('{"direct_push_limit": "64"}', "direct_push_limit must be an integer"),
        "syntax.toml": ("name = \n", "is not valid TOML"),
        "value.toml": ('bind = "no port here:x"\n', "bind in"),
    }
    for file, (text, expected) in cases.items():
        path = tmp_path / file
        path.write_text(text)
        result = agent_config(["--config", str(path), "--json"])
        assert result.returncode != 0, file
        error = json.loads(result.stderr or result.stdout)
        assert error["status"] == "error" and error["hint"], error
        assert expected in error["message"] and str(path) in error["message"], (file, error)
    missing = agent_config(["--config", str(tmp_path / "absent.toml"), "--json"])
    assert missing.returncode != 0 and "does not exist" in missing.stderr + missing.stdout


def test_every_setting_has_a_flag_in_help():
    result = agent_config(["--print-config", "--json", "--name", "n"])
    assert result.returncode == 0, result.stderr
    help_text = subprocess.run([rumor_binary(), "agent", "--help"], capture_output=True, text=True, timeout=10).stdout
    for row in json.loads(result.stdout)["data"]["settings"]:
        assert row["flag"] in help_text, row["flag"]
        assert row["env"] in help_text, row["env"]


def test_docs_document_every_key():
    from conftest import ROOT

    page = (ROOT / "docs/guide/configuration.md").read_text()
    result = agent_config(["--print-config", "--json", "--name", "n"])
    for row in json.loads(result.stdout)["data"]["settings"]:
        assert f"| `{row['key']}` |" in page, f"docs/guide/configuration.md's config-file table lacks {row['key']}"
