"""Storage faults are bad input too: a full filesystem under --data-dir (a small tmpfs), a
damaged or foreign state.sqlite, a data directory that is not writable. Needs root (mounts)."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Process, free_port, rumor_binary, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: run as root (CI does)")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def cli(agent_api, *args):
    result = subprocess.run([rumor_binary(), *args, "--api", agent_api, "--json"], capture_output=True, text=True, timeout=30)
    return result.returncode, json.loads(result.stdout or result.stderr)


def start(tmp_path, name, data_dir, extra=(), api_port=None, port=None):
    port, api_port = port or free_port(), api_port or free_port()
    args = [rumor_binary(), "agent", "--name", name, "--bind", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api_port}",
            "--data-dir", str(data_dir), *extra]
    process = Process(name, args, tmp_path)
    api = f"127.0.0.1:{api_port}"

    def healthy():
        if not process.alive():
            pytest.fail(f"{name} exited: {process.log_path.read_text()[-2000:]}")
        return subprocess.run([rumor_binary(), "info", "--api", api], capture_output=True, timeout=5).returncode == 0

    wait_until(healthy, 20, f"{name} serves its API")
    return process, api, f"127.0.0.1:{port}"


def test_a_full_disk_refuses_writes_clearly_loses_nothing_and_recovers(tmp_path, small_disk):
    data = small_disk / "data"
    agent, api, _ = start(tmp_path, "full", data)
    try:
        # Most of the space goes to a file we can delete later.
        filler = small_disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=24"], check=True, capture_output=True)
        acknowledged = {}
        refusal = None
        value = "x" * 20_000
        for i in range(200):
            code, answer = cli(api, "put", f"k{i:03d}", value)
            if code == 0:
                acknowledged[f"k{i:03d}"] = value
                continue
            refusal = answer
            break
        assert refusal, "the disk never filled"
        assert refusal["code"] == "storage_full", refusal
        assert "full" in refusal["message"] and "free space" in refusal["hint"], refusal
        assert acknowledged, "some writes fit before the disk filled"
        failed_key = f"k{len(acknowledged):03d}"
        # The refused write is not there; every acknowledged one is, and reads go on.
        code, _ = cli(api, "get", failed_key)
        assert code != 0, "a refused write must not be visible"
        for key in list(acknowledged)[:5] + list(acknowledged)[-5:]:
            code, answer = cli(api, "get", key)
            assert code == 0 and answer["data"]["value"] == value, (key, answer)
        log = agent.log_path.read_text()
        assert "the disk is full" in log, log[-2000:]
        assert agent.alive()

        # Space frees: writes succeed again, and the recovery is logged.
        filler.unlink()
        code, answer = cli(api, "put", failed_key, "after")
        assert code == 0, answer
        wait_until(lambda: "saving again" in agent.log_path.read_text(), 5, "the recovery is logged")
    finally:
        agent.terminate()

    # Nothing acknowledged was lost: a restart from the same directory has every key.
    restarted, api2, _ = start(tmp_path, "full-restarted", data)
    try:
        code, answer = cli(api2, "list")
        keys = {entry["key"] for entry in answer["data"]["entries"]}
        assert set(acknowledged) <= keys and failed_key in keys
    finally:
        restarted.stop()


def run_agent(tmp_path, data_dir, *extra):
    return subprocess.run(
        [rumor_binary(), "agent", "--name", "s", "--bind", f"127.0.0.1:{free_port()}", "--api", f"127.0.0.1:{free_port()}",
         "--data-dir", str(data_dir), "--json", *extra], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("damage", ["garbage", "foreign", "truncated"])
def test_a_damaged_or_foreign_state_file_stops_the_agent_until_resync(tmp_path, damage):
    data = tmp_path / f"data-{damage}"
    seed, seed_api, seed_address = start(tmp_path, f"seed-{damage}", tmp_path / f"seed-data-{damage}")
    try:
        for i in range(50):
            assert cli(seed_api, "put", f"key{i}", "v")[0] == 0
        if damage == "garbage":
            data.mkdir()
            (data / "state.sqlite").write_bytes(os.urandom(8192))
        elif damage == "foreign":
            data.mkdir()
            subprocess.run(["python3", "-c", f"import sqlite3; c = sqlite3.connect('{data}/state.sqlite'); "
                            "c.execute('CREATE TABLE users (id INTEGER, name TEXT)'); c.commit()"], check=True)
        else:
            # A real state file whose pages were cut short.
            writer, api, _ = start(tmp_path, "writer", data)
            for i in range(200):
                cli(api, "put", f"w{i}", "y" * 500)
            writer.terminate()
            state = data / "state.sqlite"
            subprocess.run(["python3", "-c", f"import sqlite3; sqlite3.connect('{state}').execute('PRAGMA wal_checkpoint(TRUNCATE)')"],
                           check=True)
            raw = state.read_bytes()
            state.write_bytes(raw[: len(raw) // 2] + os.urandom(len(raw) // 4))
        original = (data / "state.sqlite").read_bytes()

        refused = run_agent(tmp_path, data, "--join", seed_address)
        assert refused.returncode != 0, refused.stdout
        error = json.loads(refused.stderr.strip().splitlines()[-1])
        assert error["code"] == "storage_corrupt", error
        assert "--resync" in error["hint"], error
        assert (data / "state.sqlite").read_bytes() == original, "the file is left as it was"

        agent, api, _ = start(tmp_path, f"resynced-{damage}", data, extra=["--resync", "--join", seed_address])
        try:
            kept = [p for p in data.iterdir() if p.name.startswith("state.sqlite.broken-") and not p.name.endswith(("-wal", "-shm"))]
            assert len(kept) == 1 and kept[0].read_bytes() == original, list(data.iterdir())
            assert "moved the saved state aside" in agent.log_path.read_text()
            wait_until(lambda: cli(api, "status")[1]["data"]["values"] >= 50, 20, "the state is rebuilt from the swarm")
        finally:
            agent.stop()
    finally:
        seed.stop()


def test_a_data_directory_that_is_not_writable_is_a_clear_error_at_start(tmp_path):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(readonly)], check=True)
    try:
        result = run_agent(tmp_path, readonly)
        assert result.returncode != 0
        error = json.loads(result.stderr.strip().splitlines()[-1])
        assert error["code"] == "bad_config" and "not writable" in error["message"], error
        assert error["hint"], error
        result = run_agent(tmp_path, readonly / "sub")
        error = json.loads(result.stderr.strip().splitlines()[-1])
        assert result.returncode != 0 and error["code"] == "bad_config" and "cannot create" in error["message"], error
    finally:
        subprocess.run(["umount", "-l", str(readonly)], check=False)


def test_a_full_disk_at_start_names_the_full_disk(tmp_path, small_disk):
    """Issue 29: a full disk at start-up was reported as "check that --data-dir is writable and
    not used by another agent"; the hint now says the disk is full (ENOSPC)."""
    data = small_disk / "data"
    data.mkdir()
    subprocess.run(["dd", "if=/dev/zero", f"of={small_disk}/fill", "bs=64k"], capture_output=True)
    result = run_agent(tmp_path, data)
    assert result.returncode != 0, result.stdout
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["code"] == "storage_failed", error
    assert f"{data} is full (ENOSPC)" in error["hint"], error
    assert "another agent" not in error["hint"], error
