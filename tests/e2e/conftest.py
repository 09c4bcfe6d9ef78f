"""Real-process harness: starts `rumor agent` and Go memberlist nodes on 127.0.0.1, always stops
them, and prints their logs when a test fails."""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clockshim"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netdelay"))
import clockshim  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def rumor_binary() -> str:
    for candidate in (os.environ.get("RUMOR_BIN"), ROOT / ".build/release/rumor", ROOT / ".build/debug/rumor"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no rumor binary: run `swift build -c release` first or set RUMOR_BIN", pytrace=False)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def wait_until(predicate, timeout: float, message: str, interval: float = 0.05):
    """Polls `predicate` until it returns a truthy value; fails with `message` and the last
    observed value after `timeout` seconds. Returns (value, seconds waited)."""
    start = time.monotonic()
    last = None
    while True:
        try:
            last = predicate()
        except Exception as error:  # a node may be restarting; keep polling
            last = error
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.1f}s: {message}; last observed: {last!r}", pytrace=False)
        time.sleep(interval)


class Process:
    def __init__(self, name, args, log_dir: Path, env=None, nofile=None):
        """`nofile`: the process's open-file limit, soft and hard (as `ulimit -n`)."""
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                      preexec_fn=limit)

    def kill9(self):
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, timeout=15) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self):
        if self.alive():
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.log.close()


class RumorAgent(Process):
    def __init__(self, name, log_dir, join=(), swarm=None, profile=None, extra=(), port=None, api_port=None, ready=True,
                 clock_offset_ms=None, clock_shim=None, nofile=None):
        """Starts the agent and waits until it serves its API; with peers to join (or discover),
        also until it is ready (synced with one), as `rumor wait --ready` does: before that its
        reads answer not_ready. `ready=False` returns while it may still be syncing.
        `clock_offset_ms`: run it under the clock shim (`clock_shim`, the built library), its wall
        clock that far off; `set_clock_offset` steps it while it runs."""
        env = None
        self.clock_offset_file = None
        if clock_offset_ms is not None:
            if not clock_shim:
                pytest.fail("clock_offset_ms needs the clock shim: start the agent with swarm.agent(...)", pytrace=False)
            self.clock_offset_file = Path(log_dir) / f"{name}.clock_offset_ms"
            self.set_clock_offset(clock_offset_ms)
            env = dict(os.environ, LD_PRELOAD=clock_shim, RUMOR_CLOCK_OFFSET_FILE=str(self.clock_offset_file))
        # free_port() releases the port before the agent binds it, so an outgoing connection of
        # another process can take it meanwhile ("Address already in use"): then try new ports.
        for attempt in range(3):
            self.port = port or free_port()
            self.api_port = api_port or free_port()
            self.address = f"127.0.0.1:{self.port}"
            self.api = f"127.0.0.1:{self.api_port}"
            args = [rumor_binary(), "agent", "--name", name, "--api", self.api]
            if "pilot" not in extra:  # over Pilot the daemon gives the address (--bind is refused)
                args += ["--bind", self.address]
            for seed in join:
                args += ["--join", seed]
            if swarm:
                args += ["--swarm", swarm]
            if profile:
                args += ["--profile", profile]
            args += list(extra)
            super().__init__(name, args, log_dir, env=env, nofile=nofile)
            chosen_by_us = port is None and api_port is None
            if chosen_by_us and attempt < 2 and self.lost_port_race():
                self.stop()
                continue
            wait_until(self.healthy, 20, f"agent {name} serves its API")
            if ready and (join or "--discover" in extra):
                wait_until(self.ready, 20, f"agent {name} is ready (synced with a peer, or its ready timeout passed)")
            return

    def set_clock_offset(self, milliseconds: int):
        """Sets how far off the agent's wall clock is (the shim reads it within 20 ms); written
        whole and renamed into place, so the shim never reads half a number."""
        assert self.clock_offset_file, f"agent {self.name} does not run under the clock shim (pass clock_offset_ms)"
        clockshim.set_offset(self.clock_offset_file, milliseconds)

    def lost_port_race(self) -> bool:
        """Waits until the agent serves its API or exits; true if it exited on a port taken meanwhile."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not self.alive():
                return "Address already in use" in self.log_path.read_text(errors="replace")
            try:
                if self.healthy():
                    return False
            except Exception:
                return False
            time.sleep(0.05)
        return False

    def healthy(self):
        if not self.alive():
            pytest.fail(f"agent {self.name} exited with {self.popen.returncode}; log: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{self.api}/v1/health", timeout=1) as response:
                return json.load(response)["status"] == "ok"
        except urllib.error.HTTPError as error:
            return error.code == 401  # serving, behind a token
        except OSError:
            return False

    def ready(self):
        """Whether the agent serves reads; asks it to hold the answer up to 5 s until it does."""
        try:
            with urllib.request.urlopen(f"http://{self.api}/v1/health?wait=5", timeout=10) as response:
                return json.load(response)["data"]["ready"]
        except urllib.error.HTTPError as error:
            return error.code == 401  # behind a token: the test reads with it

    def cli(self, *args, check=True):
        result = subprocess.run(
            [rumor_binary(), *args, "--api", self.api, "--json"], capture_output=True, text=True, timeout=30
        )
        if check and result.returncode != 0:
            raise AssertionError(f"rumor {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def members(self) -> dict:
        """name -> state, as this agent reports it."""
        envelope = json.loads(self.cli("members").stdout)
        assert envelope["status"] == "ok", envelope
        return {m["name"]: m["state"] for m in envelope["data"]["members"]}

    def info(self) -> dict:
        return json.loads(self.cli("info").stdout)["data"]


class GoNode(Process):
    def __init__(self, name, log_dir, binary, join=(), key=None):
        self.port = free_port()
        self.http_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        args = [binary, "-name", name, "-port", str(self.port), "-http", f"127.0.0.1:{self.http_port}"]
        for seed in join:
            args += ["-join", seed]
        if key:
            args += ["-key", key]
        super().__init__(name, args, log_dir)
        wait_until(self.reachable, 20, f"Go node {name} serves HTTP")

    def reachable(self):
        if not self.alive():
            pytest.fail(f"Go node {self.name} exited; log: {self.log_path.read_text()[-2000:]}")
        try:
            self.members()
            return True
        except OSError:
            return False

    def members(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/members", timeout=2) as response:
            return {m["name"]: m["state"] for m in json.load(response)}

    def leave(self):
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/leave", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="session")
def gonode_binary(tmp_path_factory):
    go = shutil.which("go")
    if not go:
        pytest.fail("`go` is not installed: apt-get install golang-go golang-github-hashicorp-memberlist-dev", pytrace=False)
    out = tmp_path_factory.mktemp("gonode") / "gonode"
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", GOCACHE=str(out.parent / "cache"))
    result = subprocess.run(
        [go, "build", "-o", str(out), "."], cwd=ROOT / "tests/interop/gonode", env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"building the Go memberlist node failed:\n{result.stderr}", pytrace=False)
    return str(out)


@pytest.fixture(scope="session")
def clock_shim(tmp_path_factory) -> str:
    """tests/clockshim built into a shared library, for LD_PRELOAD: it shifts the wall clock of
    the agents started with clock_offset_ms."""
    try:
        return clockshim.build(tmp_path_factory.mktemp("clockshim"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def swarm(request, gonode_binary):
    """Starts processes for one test and stops them all afterwards, printing logs on failure."""
    log_dir = Path(tempfile.mkdtemp(prefix=f"rumor-{request.node.name}-"))
    processes = []

    class Swarm:
        def agent(self, name, **kwargs):
            if kwargs.get("clock_offset_ms") is not None:
                kwargs["clock_shim"] = request.getfixturevalue("clock_shim")
            process = RumorAgent(name, log_dir, **kwargs)
            processes.append(process)
            return process

        def gonode(self, name, **kwargs):
            process = GoNode(name, log_dir, gonode_binary, **kwargs)
            processes.append(process)
            return process

    yield Swarm()
    for process in processes:
        process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for process in processes:
            print(f"----- log of {process.name} -----")
            print(process.log_path.read_text(errors="replace")[-4000:])
    shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture
def delayed_swarm(request):
    """`delayed_swarm(n, extra=[...], one_way_ms=…, jitter_ms=…, loss=…)` starts n agents in
    network namespaces behind the NFQUEUE delayer (tests/netdelay; each of the three a number, a
    function (source, destination) -> number, or a matrix: a region matrix) and returns the
    `DelayedSwarm` (`swarm.network.set_delays(...)` changes them, `swarm.network.counts()`
    counts packets per pair, `swarm.cli(i, ...)` runs the CLI beside agent i); every swarm is
    torn down after the test (agents, delayer, namespaces), its logs printed if it failed.
    Needs root, iproute2, iptables and NetfilterQueue (.ci/run installs them)."""
    from delayed_network import delay_tools_missing
    from delayed_swarm import DelayedSwarm

    problems = delay_tools_missing()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
    started = []

    def start(agents, **kwargs):
        swarm = DelayedSwarm(agents, rumor_binary(), tag=f"nd{os.getpid() % 10000}x{len(started)}", **kwargs)
        started.append(swarm)
        return swarm

    yield start
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else True
    for swarm in started:
        if failed:
            for index in range(len(swarm)):
                print(f"----- log of h{index} -----\n{swarm.log_tail(index, 1500)}")
            print(f"----- delayer -----\n{swarm.network.delayer_log_text()}")
        swarm.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def measure(name: str, seconds: float):
    print(f"MEASURE {name}={seconds:.3f}s")


def without_generation(tags: dict) -> dict:
    """A Rumor node's tags less `rumor.gen` (its process generation, 16 hex digits, checked here),
    which changes with every start."""
    tags = dict(tags)
    generation = tags.pop("rumor.gen", None)
    assert generation is None or (len(generation) == 16 and int(generation, 16) > 0), generation
    return tags
