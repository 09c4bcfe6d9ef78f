"""Rumor agents in delayed network namespaces: agent i runs in host i of a `DelayedNetwork`, as
`h<i>`, gossiping on 10.213.<net>.<i+1>:7946 (the queued port) with its API on 127.0.0.1:7373
inside its namespace (never delayed). The CLI runs in the agent's namespace (`cli`), so a
client's requests cost no delay and only gossip between agents is held and counted.

    swarm = DelayedSwarm(12, ".build/release/rumor", extra=["--direct-push-limit", "2"])
    try:
        swarm.wait_all_alive()
        swarm.network.set_delays(50)
        swarm.cli(3, "put", "k", "v")
    finally:
        swarm.close()
"""

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from delayed_network import GOSSIP_PORT, DelayedNetwork

DEAD_STATES = ("dead", "failed")


class DelayedSwarm:
    def __init__(self, agents: int, binary: str, extra=(), tag: str | None = None, seed: int | None = None,
                 start: bool = True, one_way_ms=0, jitter_ms=0, loss=0.0):
        """Creates the network, sets its delays (`DelayedNetwork.set_delays`: a number, a function
        (source, destination) -> number or a matrix each) and, with `start`, starts every agent;
        host 0 is the seed the others join (host 0 itself joins host 1 when it restarts)."""
        self.binary = binary
        self.extra = list(extra)
        self.network = DelayedNetwork(agents, tag=tag, seed=seed)
        self.workdir = self.network.workdir
        self.agents: dict[int, subprocess.Popen] = {}
        self.logs = {}
        self.pool = ThreadPoolExecutor(max_workers=min(32, agents))
        try:
            self.network.set_delays(one_way_ms, jitter_ms, loss)
            if start:
                for index in range(agents):
                    self.start(index)
        except Exception:
            self.close()
            raise

    def __len__(self):
        return len(self.network.hosts)

    @staticmethod
    def name(index: int) -> str:
        return f"h{index}"

    def address(self, index: int) -> str:
        return f"{self.network.addresses[index]}:{GOSSIP_PORT}"

    def start(self, index: int, extra=()):
        """Starts (or restarts) agent `index`, joining host 0 (host 1 for host 0 after its first start)."""
        args = [self.binary, "agent", "--name", self.name(index), "--bind", self.address(index),
                "--api", "127.0.0.1:7373", *self.extra, *extra]
        seed = 0 if index != 0 else (1 if index in self.logs else None)
        if seed is not None:
            args += ["--join", self.address(seed)]
        log = open(self.workdir / f"{self.name(index)}.log", "ab")
        self.logs[index] = log
        self.agents[index] = subprocess.Popen(self.network.command(index, *args), stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)

    def kill9(self, index: int):
        """SIGKILL: the agent says nothing to anyone (`ip netns exec` execs, so the pid is the agent's)."""
        self.agents[index].send_signal(signal.SIGKILL)
        self.agents[index].wait(timeout=10)

    def running(self) -> list[int]:
        return [index for index, process in self.agents.items() if process.poll() is None]

    def check_running(self, expected):
        """Raises, naming them, if agents that should run have exited."""
        exited = [index for index in expected if self.agents[index].poll() is not None]
        if exited:
            names = ", ".join(f"h{index} (exit {self.agents[index].returncode})" for index in exited)
            raise RuntimeError(f"agents exited: {names}; log of h{exited[0]}: {self.log_tail(exited[0])}")

    def cli(self, index: int, *args, timeout: float = 15):
        """`rumor ARGS --json` against agent `index`: its `data`, or RuntimeError with the error."""
        result = subprocess.run(self.network.command(index, self.binary, *args, "--api", "127.0.0.1:7373", "--json"),
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"h{index}: rumor {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return json.loads(result.stdout)["data"]

    def members(self, index: int) -> dict:
        """name -> state, as agent `index` lists its members."""
        return {m["name"]: m["state"] for m in self.cli(index, "members")["members"]}

    def on_each(self, function, indexes=None) -> dict:
        """{index: function(index)} over agents `indexes` (default: the running ones), concurrently;
        an exception is returned as the value."""
        indexes = self.running() if indexes is None else list(indexes)

        def call(index):
            try:
                return function(index)
            except Exception as error:  # noqa: BLE001 - the caller decides
                return error
        return dict(zip(indexes, self.pool.map(call, indexes)))

    def views(self, indexes=None) -> dict:
        """{observer: {name: state}} from every running agent (an agent that did not answer is left out)."""
        return {index: view for index, view in self.on_each(self.members, indexes).items()
                if not isinstance(view, Exception)}

    def wait(self, predicate, timeout: float, what: str, interval: float = 0.1) -> float:
        """Polls `predicate` until true; returns the seconds waited, or raises after `timeout`."""
        start = time.monotonic()
        last = None
        while True:
            try:
                last = predicate()
                if last:
                    return time.monotonic() - start
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as error:
                last = error
            if time.monotonic() - start > timeout:
                raise AssertionError(f"timed out after {timeout:.0f}s: {what}; last: {last!r}")
            time.sleep(interval)

    def all_see(self, expected: dict, observers=None) -> bool:
        """Whether every observer (default: every running agent) lists each name in `expected`
        ({name: state}) in that state."""
        observers = self.running() if observers is None else observers
        views = self.views(observers)
        return len(views) == len(observers) and all(
            all(view.get(name) == state for name, state in expected.items()) for view in views.values())

    def wait_all_alive(self, timeout: float = 60) -> float:
        """Waits until every running agent lists every running agent alive and is ready."""
        running = self.running()
        seconds = self.wait(lambda: self.all_see({self.name(i): "alive" for i in running}), timeout,
                            "every agent lists every agent alive")
        for index, answer in self.on_each(lambda i: self.cli(i, "wait", "--ready", "--timeout", "30s", timeout=40),
                                          running).items():
            if isinstance(answer, Exception):
                raise AssertionError(f"h{index} is not ready: {answer}")
        return seconds

    def counters(self, indexes=None) -> dict:
        """{index: the agent's `rumor info` counters}."""
        return {index: info["counters"] for index, info in self.on_each(lambda i: self.cli(i, "info"), indexes).items()
                if not isinstance(info, Exception)}

    def log_tail(self, index: int, characters: int = 3000) -> str:
        path = self.workdir / f"{self.name(index)}.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""

    def close(self):
        """Kills every agent, stops the delayer, removes the namespaces."""
        for process in self.agents.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in self.logs.values():
            log.close()
        self.pool.shutdown(wait=False)
        self.network.close()
