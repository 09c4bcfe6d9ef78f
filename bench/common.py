"""Helpers shared by the benchmark scripts: start agents, talk to their API."""

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rumor_binary() -> str:
    binary = os.environ.get("RUMOR_BIN", str(ROOT / ".build" / "release" / "rumor"))
    if not Path(binary).exists():
        raise SystemExit(f"no Rumor binary at {binary}: run `swift build -c release` first")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Client:
    """A kept-alive HTTP connection to one agent's API (one per thread)."""

    def __init__(self, api):
        host, port = api.split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        answer = json.loads(self.connection.getresponse().read())
        if answer["status"] != "ok":
            raise RuntimeError(f"{method} {path}: {answer}")
        return answer["data"]


class Agent:
    def __init__(self, name, log_dir, join=None, data_dir=None, log_level="error", extra=()):
        self.name = name
        self.gossip = f"127.0.0.1:{free_port()}"
        self.api = f"127.0.0.1:{free_port()}"
        args = [rumor_binary(), "agent", "--name", name, "--api", self.api, "--log-level", log_level]
        if "pilot" not in extra:  # over Pilot the daemon gives the address (--bind is refused)
            args += ["--bind", self.gossip]
        if join:
            args += ["--join", join]
        if data_dir:
            args += ["--data-dir", str(data_dir)]
        args += list(extra)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                Client(self.api).call("GET", "/v1/health")
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"agent {name} did not start; see {self.log.name}")
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


def watch(agent, prefix, on_line, parse=json.loads):
    """Streams the agent's watch of `prefix`, calling on_line(parse(line), arrival_time) per change."""
    def run():
        host, port = agent.api.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=3600)
        connection.request("GET", f"/v1/kv/watch?prefix={prefix}")
        response = connection.getresponse()
        for line in response:
            on_line(parse(line), time.monotonic())
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, int(len(sorted_values) * fraction + 0.5) - 1))]
