"""The OpenClaw skill (skills/rumor/SKILL.md) stays true.

Its front matter parses; every `rumor` command and flag in its code blocks exists; and every ```sh
block runs, in order, against live agents, following the convention written at the top of the
skill's body: each block in its own bash (`set -euo pipefail`) and session, in one scratch
directory, with rumor on PATH and the agents' addresses in GOSSIP_A/B/C, API_A/B/C and RUMOR_API.
The agents are the ones the skill's own recipes start; every process a block starts is killed at
the end. Then the recipes' outcomes are checked against the agents and the files they wrote.
"""

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, free_port, rumor_binary, wait_until
from pilot_net import PilotNet

SKILL = ROOT / "skills/rumor/SKILL.md"
BLOCK_TIMEOUT = 45  # seconds for one block; all of them together take a few seconds
AGENTS = ("A", "B", "C")


# ---------------------------------------------------------------- reading the skill


@dataclass
class Block:
    index: int  # 1-based, in file order, over all fenced blocks
    lang: str
    line: int  # line of the opening fence in SKILL.md
    heading: str
    code: str

    def name(self) -> str:
        return f"SKILL.md block {self.index} (```{self.lang} at line {self.line}, under '{self.heading}')"


def split_front_matter(text: str):
    """(front matter lines, body, line number where the body starts)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        pytest.fail("SKILL.md must start with a `---` line opening its YAML front matter", pytrace=False)
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            return lines[1:end], "\n".join(lines[end + 1:]), end + 2
    pytest.fail("SKILL.md front matter has no closing `---` line", pytrace=False)


def parse_front_matter(lines) -> dict:
    """OpenClaw's fallback parser reads single-line `key: value` pairs only (and `metadata` as one
    line of JSON), so that is all this accepts: the skill then loads under either parser."""
    fields = {}
    for number, line in enumerate(lines, start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_-]*):\s*(.*)", line)
        assert match, f"SKILL.md line {number}: front matter must be single-line `key: value` pairs, got {line!r}"
        key, raw = match.groups()
        assert key not in fields, f"SKILL.md line {number}: key {key!r} repeats"
        raw = raw.strip()
        if raw.startswith(("{", "[")):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                pytest.fail(f"SKILL.md line {number}: {key} is not one line of valid JSON: {error}", pytrace=False)
        elif raw.startswith('"'):
            value = json.loads(raw)
        elif raw.startswith("'") and raw.endswith("'"):
            value = raw[1:-1].replace("''", "'")
        else:
            assert ": " not in raw and " #" not in raw, (
                f"SKILL.md line {number}: quote the value of {key!r} (it holds ': ' or ' #', which YAML reads differently)")
            value = raw
        fields[key] = value
    return fields


def read_blocks(body: str, first_line: int) -> list:
    blocks, heading, current = [], "(top)", None
    for offset, line in enumerate(body.split("\n")):
        number = first_line + offset
        if current is None:
            fence = re.fullmatch(r"```\s*([^\s`]*)\s*", line)
            if fence:
                current = Block(len(blocks) + 1, fence.group(1), number, heading, "")
                code = []
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
        elif re.fullmatch(r"```\s*", line):
            current.code = "\n".join(code) + "\n"
            blocks.append(current)
            current = None
        else:
            code.append(line)
    assert current is None, f"{current.name()} is never closed"
    return blocks


def load_skill():
    front, body, body_line = split_front_matter(SKILL.read_text())
    return parse_front_matter(front), body, read_blocks(body, body_line), front


# ---------------------------------------------------------------- running the blocks


def session_processes(session: int) -> list:
    """Live processes of one session (Linux /proc); a block's `timeout` helpers leave its process
    group but stay in its session."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry))
    return found


def kill_session(session: int):
    try:
        os.killpg(session, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if not Path("/proc/self/stat").exists():
        return
    for pid in session_processes(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not session_processes(session), 10, f"every process of block session {session} is gone")


def tail(path: Path, lines=30) -> str:
    if not path.exists():
        return "(none)"
    text = path.read_text(errors="replace").rstrip("\n").split("\n")
    return "\n".join(text[-lines:]) or "(empty)"


@dataclass
class Result:
    block: Block
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class BlockFailed(Exception):
    def __init__(self, report: str, summary: str):
        super().__init__(report)
        self.report, self.summary = report, summary


class SkillRun:
    def __init__(self, workdir: Path, logs: Path, env: dict):
        self.workdir, self.logs, self.env = workdir, logs, env
        self.sessions = []
        self.results = {}
        self.failure = None  # BlockFailed, when a block failed (the later ones did not run)

    def run(self, block: Block) -> Result:
        out, err = self.logs / f"block{block.index}.out", self.logs / f"block{block.index}.err"
        # On a failing command, name it and its SKILL.md line (the script's line 1 is this prelude).
        prelude = (
            "set -euo pipefail; "
            f"trap 'echo \"SKILL.md line $((LINENO + {block.line - 1})): exit $? from: $BASH_COMMAND\" >&2' ERR\n"
        )
        start = time.monotonic()
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                ["bash", "-c", prelude + block.code], cwd=self.workdir, env=self.env,
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True)
        self.sessions.append(process.pid)
        try:
            returncode = process.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            kill_session(process.pid)
            process.wait()
            self.fail(block, f"did not finish within {BLOCK_TIMEOUT}s", out, err)
        result = Result(block, returncode, out.read_text(errors="replace"), err.read_text(errors="replace"),
                        time.monotonic() - start)
        if returncode != 0:
            self.fail(block, f"failed with exit status {returncode}", out, err)
        self.results[block.index] = result
        return result

    def fail(self, block: Block, what: str, out: Path, err: Path):
        agent_logs = "\n".join(
            f"--- {log.name} ---\n{tail(log, 15)}" for log in sorted(self.workdir.glob("*.log")))
        raise BlockFailed(
            f"{block.name()} {what}.\n--- the block ---\n{block.code}--- its stderr ---\n{tail(err)}\n"
            f"--- its stdout ---\n{tail(out)}\n{agent_logs}", f"{block.name()} {what}")

    def cleanup(self):
        for session in self.sessions:
            kill_session(session)

    def under(self, heading: str) -> Result:
        """The result of the one sh block under a heading (matched by prefix)."""
        found = [r for r in self.results.values() if r.block.heading.lower().startswith(heading.lower())]
        assert len(found) == 1, (
            f"expected one sh block under a heading starting {heading!r} in SKILL.md, found {len(found)}; "
            f"headings with blocks: {sorted({r.block.heading for r in self.results.values()})}")
        return found[0]

    def cli(self, agent: str, *args):
        """Runs `rumor ARGS --api $API_<agent> --json`; (exit status, parsed envelope)."""
        result = subprocess.run(
            [rumor_binary(), *args, "--api", self.env[f"API_{agent}"], "--json"],
            capture_output=True, text=True, timeout=30)
        stream = result.stdout if result.returncode == 0 else result.stderr
        return result.returncode, json.loads(stream)

    def value(self, agent: str, key: str):
        """The live value of `key` on agent A/B/C, or None when it reads as absent."""
        status, envelope = self.cli(agent, "get", key)
        if status == 0:
            return envelope["data"]["value"]
        assert envelope["code"] == "key_not_found", envelope
        return None


def block_environment() -> dict:
    binary = Path(rumor_binary()).resolve()
    if binary.name != "rumor" or not binary.with_name("rumor-agent").is_file():
        pytest.fail(f"{binary} must be `rumor` with `rumor-agent` beside it (swift build -c release builds both)",
                    pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUMOR_")}
    env["PATH"] = f"{binary.parent}{os.pathsep}{env.get('PATH', '')}"
    # Ports below the ephemeral range, so that no outgoing connection takes one between now and
    # the block that binds it (the Pilot agents start minutes after this).
    ports = stable_ports(2 * len(AGENTS) + 3)
    for i, agent in enumerate(AGENTS):
        env[f"GOSSIP_{agent}"] = f"127.0.0.1:{ports[2 * i]}"
        env[f"API_{agent}"] = f"127.0.0.1:{ports[2 * i + 1]}"
    env["RUMOR_API"] = env["API_A"]
    for index in range(1, 4):
        env[f"API_P{index}"] = f"127.0.0.1:{ports[2 * len(AGENTS) + index - 1]}"
    return env


def stable_ports(count):
    """`count` ports free for TCP and UDP on 127.0.0.1, below the kernel's ephemeral range."""
    import random
    import socket
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chosen = []
    for port in random.sample(range(20000, min(low, 32768)), 400):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    pytest.fail("no free ports below the ephemeral range", pytrace=False)


@pytest.fixture(scope="module")
def skill_run(request, tmp_path_factory):
    """Runs every ```sh block of SKILL.md once, in order; the checks below read what they did."""
    _, _, blocks, _ = load_skill()
    runnable = [b for b in blocks if b.lang == "sh"]
    assert runnable, "SKILL.md has no ```sh blocks"
    env = block_environment()
    # "On Pilot" runs on three pilot-daemons of a local offline Pilot network.
    pilot = PilotNet(3)
    request.addfinalizer(pilot.stop)
    for index in range(1, 4):
        env[f"PILOT_SOCKET_{index}"] = pilot.socket(index)
        env[f"PILOT_HOST_{index}"] = f"node-{index}"
    run = SkillRun(tmp_path_factory.mktemp("skill-work"), tmp_path_factory.mktemp("skill-logs"), env)
    request.addfinalizer(run.cleanup)
    start = time.monotonic()
    try:
        for block in runnable:
            run.run(block)
    except BlockFailed as failure:
        run.failure = failure
        return run
    timings = ", ".join(f"{r.block.index}:{r.seconds:.2f}s" for r in run.results.values())
    print(f"MEASURE skill_blocks={time.monotonic() - start:.3f}s ({len(runnable)} blocks; {timings})")
    return run


# ---------------------------------------------------------------- static checks


def test_front_matter_is_an_openclaw_skill():
    fields, body, blocks, front = load_skill()
    assert fields.get("name") == SKILL.parent.name == "rumor", fields.get("name")
    description = fields.get("description")
    assert isinstance(description, str) and 50 <= len(description) <= 1024, description
    for word in ("swarm", "coordinator", "presence", "state"):
        assert word in description, f"the description should say when to use the skill ({word!r} missing)"
    metadata = fields.get("metadata")
    assert isinstance(metadata, dict) and "openclaw" in metadata, f"metadata must hold an openclaw object: {metadata!r}"
    assert "rumor" in metadata["openclaw"]["requires"]["bins"], metadata
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:  # the primary parser OpenClaw uses must read the same thing
        assert yaml.safe_load("\n".join(front)) == fields
    assert "<!--" in body.split("#", 1)[0] and "test_skill.py" in body, "the test convention comment opens the body"
    for block in blocks:
        assert block.lang in ("sh", "text"), f"{block.name()}: use ```sh (run by this test) or ```text (not run)"
    assert sum(b.lang == "text" for b in blocks) <= 2, "```text blocks should stay rare: make recipes runnable"


def command_table() -> dict:
    """'put' / 'keys install' -> the long flags argument-parser knows for it, from `rumor context --json`."""
    result = subprocess.run([rumor_binary(), "context", "--json"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    table = {}

    def walk(command, path):
        flags = {n["name"] for a in command.get("arguments", []) for n in a.get("names", []) if n["kind"] == "long"}
        table[" ".join(path)] = flags | {"help"}
        for sub in command.get("subcommands", []):
            walk(sub, path + [sub["commandName"]])

    walk(json.loads(result.stdout)["data"]["commands"], [])
    return table


# `rumor` where a shell runs it: line start, after an operator, `$(`, a keyword, `timeout N`, or VAR=x.
INVOCATION = re.compile(
    r"(?:^|[|;&(`'\"!]|\b(?:do|then|else|until|while|if)\b|\btimeout\s+\S+|\b[A-Z_][A-Z0-9_]*=\S*)"
    r"\s*rumor\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?")


def test_every_command_and_flag_in_the_skill_exists():
    _, _, blocks, _ = load_skill()
    table = command_table()
    problems, seen = [], 0
    for block in blocks:
        for offset, line in enumerate(block.code.split("\n"), start=1):
            line = re.sub(r"(^|\s)#(\s.*)?$", "", line)  # comments
            for match in INVOCATION.finditer(line):
                command = match.group(1)
                if match.group(2) and f"{command} {match.group(2)}" in table:
                    command = f"{command} {match.group(2)}"
                rest = re.split(r"[|;&)`]|\d?>", line[match.end():])[0]
                where = f"SKILL.md line {block.line + offset}"
                if command not in table:
                    problems.append(f"{where}: `rumor {command}` is not a command")
                    continue
                seen += 1
                for flag in re.findall(r"(?<!\S)--([a-z][a-z-]*)", rest):
                    if flag not in table[command]:
                        problems.append(f"{where}: `rumor {command}` has no --{flag}")
    assert not problems, "\n".join(problems)
    assert seen >= 20, f"only {seen} rumor commands found in SKILL.md code blocks"


# ---------------------------------------------------------------- the recipes, run


@pytest.fixture
def ran(skill_run):
    """The run, for the outcome checks: only when every block ran (else one short failure each)."""
    if skill_run.failure:
        pytest.fail(f"{skill_run.failure.summary}; see test_every_sh_block_runs", pytrace=False)
    return skill_run


def test_every_sh_block_runs(skill_run):
    if skill_run.failure:
        pytest.fail(skill_run.failure.report, pytrace=False)
    _, _, blocks, _ = load_skill()
    assert sorted(skill_run.results) == [b.index for b in blocks if b.lang == "sh"]


def test_the_swarm_forms_and_writes_reach_every_agent(ran):
    members = ran.under("Start or join").stdout
    for name in ("a", "b", "c"):
        assert re.search(rf"^{name}\s+127\.0\.0\.1:\d+\s+alive", members, re.M), members
    # "Share state" wrote on A only, without --wait: B (and C, until it left) converge on it.
    wait_until(lambda: ran.value("B", "config/model") == '{"name":"m1"}', 10, "config/model reaches b")
    assert ran.value("A", "config/temperature") is None  # deleted by the recipe


def test_key_value_recipe_reads_other_agents_writes_and_tombstones(ran):
    output = ran.under("A distributed key-value").stdout.split("\n")
    reads = [line for line in output if line.startswith('{"name"')]
    assert reads == ['{"name":"Ada"}', '{"name":"Ada L."}'], output  # b read a's write, a read b's
    assert "tombstones:" in "\n".join(output)
    for agent in ("A", "B"):
        assert ran.value(agent, "users/42") is None, f"users/42 is deleted on {agent}"
    winners = {ran.value(agent, "leader") for agent in ("A", "B")}
    assert len(winners) == 1 and winners <= {"a", "b"}, winners


def test_wait_all_reports_every_replica(ran):
    envelope = json.loads(ran.under("Wait until every node").stdout.split("\n")[0])
    assert envelope["status"] == "ok" and sorted(envelope["data"]["replicas"]) == ["a", "b", "c"], envelope


def test_watch_recipe_streams_and_resumes(ran):
    first = [json.loads(line) for line in (ran.workdir / "jobs.ndjson").read_text().splitlines()]
    assert {(c["key"], c["change"]) for c in first} == {("jobs/1", "put"), ("jobs/2", "put")}, first
    last = max(c["seq"] for c in first)
    resumed = [json.loads(line) for line in (ran.workdir / "resumed.ndjson").read_text().splitlines()]
    assert {(c["key"], c["change"], c.get("value")) for c in resumed} == {
        ("jobs/1", "put", "running"), ("jobs/2", "delete", None)}, resumed
    assert all(c["seq"] > last for c in resumed), (last, resumed)


def test_presence_vanishes_when_its_writer_leaves(ran):
    listed = ran.under("Presence").stdout
    rows = re.findall(r"^presence/c\s", listed, re.M)
    assert len(rows) == 1, listed  # listed before the leave, gone after
    for agent in ("A", "B"):
        assert ran.value(agent, "presence/c") is None
    status, envelope = ran.cli("C", "put", "presence/c", "back")
    assert status == 1 and envelope["code"] == "left", envelope


def test_lease_expires_everywhere(ran):
    ran.under("Lease")  # ran: it took the lease, saw it on b, and waited for it to lapse
    for agent in ("A", "B"):
        assert ran.value(agent, "lock/job-7") is None


def test_error_recipe_shows_the_json_error_envelope(ran):
    output = ran.under("Reading errors").stdout
    assert "exit status 1" in output and "absent: use a default" in output, output
    error = json.loads((ran.workdir / "err.json").read_text())
    assert error["status"] == "error" and error["code"] == "key_not_found", error
    assert error["message"] and error["hint"], error
    bad = json.loads((ran.workdir / "bad.json").read_text())
    assert bad["code"] == "bad_arguments" and "soon" in bad["message"] and bad["hint"], bad


def test_context_recipe_describes_commands_and_error_codes(ran):
    context = json.loads((ran.workdir / "rumor-context.json").read_text())["data"]
    codes = {e["code"] for e in context["errorCodes"]}
    assert {"key_not_found", "bad_arguments", "replication_timeout", "left"} <= codes, codes
    assert ran.under("Discover").stdout.startswith("error codes: ")


def test_pilot_recipe_forms_a_swarm_and_replicates_over_pilot(ran):
    members = [r for r in ran.results.values() if r.block.heading == "On Pilot"][0].stdout
    assert re.search(r"^p1\s+\d+:[0-9A-F]{4}\.[0-9A-F]{4}\.[0-9A-F]{4}:7946\s+alive", members, re.M), members
    for agent in ("P1", "P2", "P3"):
        assert json.loads(ran.value(agent, "jobs/17")) == {"state": "done", "by": "p2"}


def test_events_recipe_delivers_the_event_to_another_agent(ran):
    lines = [json.loads(line) for line in (ran.workdir / "events.ndjson").read_text().splitlines() if line.startswith("{")]
    assert any(e["name"] == "deploy" and e["payload"] == "v1.2" and e["event"] == "user" for e in lines), lines
