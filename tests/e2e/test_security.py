"""Encrypted gossip: memberlist-compatible keyring, Go interop with right/wrong/no key, live key
rotation with writes flowing, keyring persistence, and the API token."""

import json
import os
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request

from conftest import measure, rumor_binary, wait_until


def keygen() -> str:
    return subprocess.run([rumor_binary(), "keygen"], capture_output=True, text=True, check=True).stdout.strip()


def all_alive(nodes, names):
    def check():
        return all(all(node.members().get(name) == "alive" for name in names) for node in nodes)
    return check


def test_encrypted_swarm_with_go_memberlist_and_rejected_strangers(swarm):
    key = keygen()
    # Rumor speaks plain memberlist here (Go memberlist nodes refuse Serf's delegate version).
    r1 = swarm.agent("r1", extra=["--encrypt", key, "--protocol", "memberlist"])
    g1 = swarm.gonode("g1", join=[r1.address], key=key)  # Go joins an encrypted Rumor seed
    r2 = swarm.agent("r2", join=[g1.address], extra=["--encrypt", key, "--protocol", "memberlist"])  # Rumor joins through Go
    names = ["r1", "r2", "g1"]
    _, joined = wait_until(all_alive([r1, r2], names), 10, "encrypted Rumor and Go nodes see each other")
    wait_until(lambda: all(g1.members().get(name) == "alive" for name in names), 10, "the Go node sees all alive")
    measure("encrypted_mixed_join", joined)
    r1.cli("put", "secret", "v1")
    wait_until(lambda: json.loads(r2.cli("get", "secret").stdout)["data"]["value"] == "v1", 5,
               "an encrypted write replicates")

    wrong = swarm.gonode("wrong-key", join=[r1.address], key=keygen())
    plain = swarm.gonode("no-key", join=[r1.address])
    time.sleep(2)
    for node in (r1, r2):
        assert "wrong-key" not in node.members() and "no-key" not in node.members(), node.members()
    assert set(wrong.members()) == {"wrong-key"} and set(plain.members()) == {"no-key"}
    counters = r1.info()["counters"]
    assert counters.get("dropped_decrypt", 0) >= 1, counters
    assert counters.get("dropped_not_encrypted", 0) >= 1, counters
    assert r1.healthy()
    log = r1.log_path.read_text()
    assert log.count("ignoring traffic no installed key decrypts") == 1, log
    assert log.count("ignoring unencrypted traffic") == 1, log

    # An unencrypted Rumor node cannot join either, and says why.
    stranger = swarm.agent("stranger", join=[r1.address], extra=["--protocol", "memberlist"])
    time.sleep(1.5)
    assert "stranger" not in r1.members() and set(stranger.members()) == {"stranger"}


def test_a_node_with_the_wrong_key_says_the_seed_answered_but_could_not_be_read(swarm):
    """Issue 29: a node with the wrong key logged only "no seed answered; retrying". The seed now
    answers a stream it cannot decrypt with an error in its own encryption (as memberlist does),
    and the joiner says the seed answered but could not be read with its keyring, with a hint,
    once a minute per seed; a joiner without a key says it has none."""
    seed = swarm.agent("seed", extra=["--encrypt", keygen()])
    wrong = swarm.agent("wrong", join=[seed.address], extra=["--encrypt", keygen()], ready=False)
    plain = swarm.agent("plain", join=[seed.address], ready=False)
    line = f"seed {seed.address} answered, but its messages could not be decrypted with this node's keyring (wrong or missing key)"
    wait_until(lambda: line in wrong.log_path.read_text(), 15, "the wrong-key joiner says why it cannot join")
    missing = f"seed {seed.address} answered with encrypted messages, but this node has no keyring (missing key)"
    wait_until(lambda: missing in plain.log_path.read_text(), 15, "the joiner without a key says so")
    # Retries (after 1, 2, 4 s) do not repeat the line within its minute.
    wait_until(lambda: wrong.log_path.read_text().count("no seed answered; retrying") >= 3, 20, "the joiner retries")
    log = wrong.log_path.read_text()
    assert log.count(line) == 1, log
    assert "--encrypt KEY" in next(text for text in log.splitlines() if line in text), "the line carries a hint"
    assert set(wrong.members()) == {"wrong"} and "wrong" not in seed.members()


def test_key_rotation_with_the_swarm_live(swarm, tmp_path):
    old, new = keygen(), keygen()
    nodes = []
    for index in range(4):
        extra = ["--encrypt", old, "--data-dir", str(tmp_path / f"n{index}")]
        nodes.append(swarm.agent(f"n{index}", join=[nodes[0].address] if nodes else [], extra=extra))
    names = [node.name for node in nodes]
    wait_until(all_alive(nodes, names), 10, "four encrypted agents")

    # Writes flow and membership is watched during the whole rotation.
    stop = threading.Event()
    written, problems = [], []

    def write():
        index = 0
        while not stop.is_set():
            nodes[index % 4].cli("put", f"k{index}", str(index))
            written.append(f"k{index}")
            index += 1
            time.sleep(0.02)

    def watch():
        while not stop.is_set():
            for node in nodes:
                states = node.members()
                bad = {name: state for name, state in states.items() if state != "alive"}
                if bad:
                    problems.append((node.name, bad))
            time.sleep(0.1)

    threads = [threading.Thread(target=write), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        for operation in ("install", "use"):
            report = json.loads(nodes[1].cli("keys", operation, new).stdout)["data"]
            assert report["responded"] == 4 and not report["failures"], report
            time.sleep(1.5)  # gossip flows with the new primary and the old key still installed
        report = json.loads(nodes[2].cli("keys", "remove", old).stdout)["data"]
        assert report["keys"] == {new: 4} and report["primaryKeys"] == {new: 4}, report
        measure("key_rotation_three_steps", time.monotonic() - started)
        time.sleep(3)  # gossip, probes and writes with only the new key
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not problems, f"a member looked unhealthy during rotation: {problems[:5]}"
    assert len(written) > 20, len(written)
    last = written[-1]
    wait_until(lambda: all(json.loads(n.cli("get", last, check=False).stdout or "{}").get("status") == "ok" for n in nodes),
               5, "the last write reached every node")
    listed = json.loads(nodes[3].cli("list", "k").stdout)["data"]["entries"]
    assert len(listed) == len(written), (len(listed), len(written))

    # The keyring is saved, owner-only, and wins over a stale --encrypt after a restart.
    path = tmp_path / "n3" / "keyring.json"
    assert json.loads(path.read_text()) == [new]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    nodes[3].kill9()
    back = swarm.agent("n3", join=[nodes[0].address], extra=["--encrypt", old, "--data-dir", str(tmp_path / "n3")])
    wait_until(all_alive([nodes[0], back], names), 15, "the restarted node rejoins with the rotated key")
    assert "--encrypt is ignored" in back.log_path.read_text()


def test_plaintext_swarm_moves_to_encryption_with_rolling_restarts(swarm, tmp_path):
    """Consul's three steps: every node restarted to send plaintext but hold the key, then to send
    encrypted while still accepting plaintext, then to require encryption. The swarm stays whole
    and keeps replicating at every restart."""
    key = keygen()
    relaxed = ["--encrypt", key, "--encrypt-verify-incoming", "false"]
    steps = [relaxed + ["--encrypt-verify-outgoing", "false"], relaxed, ["--encrypt", key]]
    names = ["m1", "m2", "m3"]
    nodes = {}
    for name in names:
        data = ["--data-dir", str(tmp_path / name)]
        nodes[name] = swarm.agent(name, join=[nodes["m1"].address] if nodes else [], extra=data)
    wait_until(all_alive(list(nodes.values()), names), 10, "three plaintext agents")

    def value_everywhere(key_name):
        def check():
            return all(
                json.loads(node.cli("get", key_name, check=False).stdout or "{}").get("data", {}).get("value") == "v"
                for node in nodes.values())
        return check

    assert nodes["m1"].info()["encryption"] == "off"
    slowest = 0.0
    for step, (extra, mode) in enumerate(zip(steps, ["sending-plaintext", "accepting-plaintext", "on"]), 1):
        for name in names:
            assert nodes[name].terminate() == 0
            other = next(node for other_name, node in nodes.items() if other_name != name)
            restarted = time.monotonic()
            nodes[name] = swarm.agent(name, join=[other.address], extra=extra + ["--data-dir", str(tmp_path / name)])
            wait_until(all_alive(list(nodes.values()), names), 10, f"step {step}: {name} restarted and all alive")
            slowest = max(slowest, time.monotonic() - restarted)
            assert nodes[name].info()["encryption"] == mode
            for writer in (nodes[name], other):
                key_name = f"step{step}-{name}-by-{writer.name}"
                writer.cli("put", key_name, "v")
                wait_until(value_everywhere(key_name), 5, f"step {step}: {key_name} reaches every node")
        if step < len(steps):
            refused = nodes["m1"].cli("keys", "list", check=False)
            assert refused.returncode == 1 and json.loads(refused.stderr)["code"] == "encryption_migrating", refused.stderr
    measure("encryption_migration_restart_rejoin_slowest", slowest)

    for node in nodes.values():
        counters = node.info()["counters"]
        assert counters.get("dropped_decrypt", 0) == 0 and counters.get("dropped_not_encrypted", 0) == 0, counters
    report = json.loads(nodes["m2"].cli("keys", "list").stdout)["data"]
    assert report["keys"] == {key: 3}, report
    stranger = swarm.agent("stranger", join=[nodes["m1"].address])
    time.sleep(1.5)
    assert "stranger" not in nodes["m1"].members(), "the finished swarm refuses plaintext"
    assert nodes["m1"].info()["counters"].get("dropped_not_encrypted", 0) >= 1


def test_encryption_verification_flags_are_checked(swarm, tmp_path):
    binary = rumor_binary()
    data = tmp_path / "data"
    for extra, message, status in [
        (["--encrypt-verify-incoming", "false"], "apply only to an encrypted node", 1),  # bad_config
        (["--encrypt", keygen(), "--encrypt-verify-outgoing", "false"], "must also accept it", 1),
        (["--encrypt", keygen(), "--encrypt-verify-incoming", "maybe"], "is not true or false", 64),  # bad_arguments
    ]:
        result = subprocess.run(
            [binary, "agent", "--name", "x", "--bind", "127.0.0.1:0", "--data-dir", str(data), "--json", *extra],
            capture_output=True, text=True, timeout=20)
        assert result.returncode == status, result
        assert message in json.loads(result.stderr)["message"], result.stderr
        assert not (data / "keyring.json").exists(), "a refused start saves no keyring"


def test_key_commands_report_clear_errors(swarm):
    plain = swarm.agent("plain")
    result = plain.cli("keys", "list", check=False)
    assert result.returncode == 1 and json.loads(result.stderr)["code"] == "encryption_disabled"

    key = keygen()
    agent = swarm.agent("enc", extra=["--encrypt", key])
    for args, code in [
        (["keys", "remove", key], "bad_key"),  # the primary
        (["keys", "use", keygen()], "bad_key"),  # not installed
        (["keys", "install", "not base64!"], "bad_key"),
        (["keys", "install", "AAAA"], "bad_key"),  # 3 bytes
    ]:
        result = agent.cli(*args, check=False)
        assert result.returncode == 1, result
        assert json.loads(result.stderr)["code"] == code, result.stderr
    bad = subprocess.run([rumor_binary(), "agent", "--encrypt", "short"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 64 and "--encrypt" in bad.stderr
    assert len(__import__("base64").b64decode(keygen())) == 32


def test_api_requires_the_token_when_set(swarm):
    agent = swarm.agent("guarded", extra=["--api-token", "s3cret"])
    request = urllib.request.Request(f"http://{agent.api}/v1/members")
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("a request without the token was answered")
    except urllib.error.HTTPError as error:
        assert error.code == 401
        body = json.load(error)
        assert body["code"] == "unauthorized" and "--api-token" in body["hint"]
    request.add_header("Authorization", "Bearer s3cret")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["status"] == "ok"
    exposed = subprocess.run([rumor_binary(), "agent", "--api", "0.0.0.0:7399"], capture_output=True, text=True, timeout=10)
    assert exposed.returncode == 64 and "token" in exposed.stderr


def test_pull_floods_from_one_peer_are_rate_limited(swarm):
    import socket
    agent = swarm.agent("limited")
    agent.cli("put", "k", "v")
    host, port = agent.address.split(":")
    pull = b"\x08" + b"RK\x04\x02" + b"\x05flood" + b"\x00" + b"\x00"  # user message: pull request (frame format 4), empty digest
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(200):
            sender.sendto(pull, (host, int(port)))
    counters, _ = wait_until(lambda: (c := agent.info()["counters"]).get("rate_limited_pull", 0) >= 150 and c, 5,
                             "most of 200 back-to-back pulls from one node are dropped")
    assert 5 <= counters.get("replication_pulls_answered", 0) <= 40, counters
    assert agent.healthy()
