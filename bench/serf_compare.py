#!/usr/bin/env python3
"""Rumor against Serf 0.8.2, side by side on this machine, in one run.

Starts N `rumor agent` processes and N `serf agent` processes on loopback (both with the LAN
timing profile, which for both is memberlist's DefaultLANConfig), then measures for each:

  join       membership convergence: every agent lists N alive after N-1 join one seed
  idle       CPU (% of one core) and RSS per agent, and bytes/s per agent on the wire, at rest
  dissem     one update reaching every agent (Rumor `put` seen by `watch` streams, Serf user
             `event` seen by event streams), p50 and p99 over many updates
  detect     kill -9 of one agent until every survivor reports it failed

and prints each figure for both with the ratio Rumor/Serf and the target from the issue.

    python3 bench/serf_compare.py [--nodes 32] [--updates 100] [--json FILE]

Needs: a release build (`swift build -c release`), Go and Debian's serf source
(`apt-get install golang-go golang-github-hashicorp-serf-dev`; serf is built into .build/serf),
`pip install msgpack`. Bytes on the wire are counted with iptables rules on loopback, so they
need root; without it that row is skipped.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parent.parent


def build_serf() -> str:
    binary = ROOT / ".build" / "serf"
    if not binary.exists():
        binary.parent.mkdir(exist_ok=True)
        env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="")
        subprocess.run(["go", "build", "-o", str(binary), "github.com/hashicorp/serf/cmd/serf"], check=True, env=env)
    return str(binary)


def wait_until(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


# --- Serf RPC (msgpack over TCP) -------------------------------------------------------------

class SerfRPC:
    def __init__(self, address):
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.seq = 0
        self.lock = threading.Lock()
        self._request("handshake", {"Version": 1})

    def _read(self):
        while True:
            for item in self.unpacker:
                return item
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("serf RPC closed")
            self.unpacker.feed(data)

    def _request(self, command, body=None, has_response_body=False):
        with self.lock:
            self.seq += 1
            payload = msgpack.packb({"Command": command, "Seq": self.seq})
            if body is not None:
                payload += msgpack.packb(body, use_bin_type=True)
            self.sock.sendall(payload)
            header = self._read()
            if header.get("Error"):
                raise RuntimeError(f"serf {command}: {header['Error']}")
            return self._read() if has_response_body else None

    def members(self):
        return self._request("members", has_response_body=True)["Members"]

    def join(self, addresses):
        return self._request("join", {"Existing": addresses, "Replay": False}, has_response_body=True)

    def event(self, name, payload=b""):
        self._request("event", {"Name": name, "Payload": payload, "Coalesce": False})

    def stream(self, kind):
        """Subscribes; afterwards call next_event() from one thread only."""
        self._request("stream", {"Type": kind})
        self.sock.settimeout(None)

    def next_event(self):
        self._read()  # header
        return self._read()


# --- the two systems ---------------------------------------------------------------------------

class Agent:
    def __init__(self, system, name, gossip_port, control_port, args, log):
        self.system = system
        self.name = name
        self.gossip = f"127.0.0.1:{gossip_port}"
        self.control = f"127.0.0.1:{control_port}"
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


_connections = threading.local()


class RumorError(Exception):
    """An error answer from the agent (`code`, `message`)."""


def rumor_http(agent, method, path, body=None, timeout=5):
    """One request over a kept-alive connection per (thread, agent), so polling costs about
    what a Serf RPC call on its persistent socket costs."""
    pool = getattr(_connections, "pool", None)
    if pool is None:
        pool = _connections.pool = {}
    for attempt in range(2):
        connection = pool.get(agent.control)
        if connection is None:
            host, port = agent.control.split(":")
            connection = pool[agent.control] = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
            if answer.get("status") != "ok":
                raise RumorError(answer.get("code"), answer.get("message"))
            return answer["data"]
        except (OSError, http.client.HTTPException):
            connection.close()
            pool.pop(agent.control, None)
            if attempt == 1:
                raise


class Rumor:
    name = "rumor"

    def __init__(self, binary):
        self.binary = binary

    def start(self, index, gossip_port, control_port, log):
        return Agent("rumor", f"r{index}", gossip_port, control_port,
                     [self.binary, "agent", "--name", f"r{index}", "--bind", f"127.0.0.1:{gossip_port}",
                      "--api", f"127.0.0.1:{control_port}", "--profile", "lan", "--log-level", "error"], log)

    def ready(self, agent):
        try:
            rumor_http(agent, "GET", "/v1/health", timeout=1)
            return True
        except (OSError, http.client.HTTPException):
            return False

    def join(self, agent, seed):
        # The seed answers at most 16 push-pulls at once per host, then 8/s (the push-pull rate
        # limit), and every agent here shares 127.0.0.1: a refused join is retried, as
        # `rumor agent --join` does.
        deadline = time.monotonic() + 30
        while True:
            try:
                rumor_http(agent, "POST", "/v1/join", {"addresses": [seed.gossip]})
                return
            except RumorError as error:
                if error.args[0] != "join_failed" or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def alive(self, agent):
        return {m["name"] for m in rumor_http(agent, "GET", "/v1/members")["members"] if m["state"] == "alive"}

    def failed(self, agent):
        return {m["name"] for m in rumor_http(agent, "GET", "/v1/members")["members"] if m["state"] == "dead"}

    def subscribe(self, agent, on_update):
        """Calls on_update(key) for every put seen by the agent's watch stream."""
        def run():
            request = urllib.request.Request(f"http://{agent.control}/v1/kv/watch?prefix=bench/")
            with urllib.request.urlopen(request, timeout=3600) as response:
                for line in response:
                    on_update(json.loads(line)["key"])
        threading.Thread(target=run, daemon=True).start()

    def publish(self, agent, key):
        rumor_http(agent, "POST", "/v1/kv/put", {"key": key, "value": "x" * 64})


class Serf:
    name = "serf"

    def __init__(self, binary):
        self.binary = binary
        self.clients = {}

    def start(self, index, gossip_port, control_port, log):
        return Agent("serf", f"s{index}", gossip_port, control_port,
                     [self.binary, "agent", f"-node=s{index}", f"-bind=127.0.0.1:{gossip_port}",
                      f"-rpc-addr=127.0.0.1:{control_port}", "-profile=lan", "-log-level=err"], log)

    def client(self, agent):
        if agent.name not in self.clients:
            self.clients[agent.name] = SerfRPC(agent.control)
        return self.clients[agent.name]

    def ready(self, agent):
        try:
            self.client(agent)
            return True
        except OSError:
            return False

    def join(self, agent, seed):
        self.client(agent).join([seed.gossip])

    def alive(self, agent):
        return {m["Name"] for m in self.client(agent).members() if m["Status"] == "alive"}

    def failed(self, agent):
        return {m["Name"] for m in self.client(agent).members() if m["Status"] == "failed"}

    def subscribe(self, agent, on_update):
        stream = SerfRPC(agent.control)
        stream.stream("user")

        def run():
            while True:
                try:
                    on_update(stream.next_event()["Name"])
                except (ConnectionError, OSError):
                    return
        threading.Thread(target=run, daemon=True).start()

    def publish(self, agent, key):
        self.client(agent).event(key, b"x" * 64)


# --- measurements ------------------------------------------------------------------------------

def measure_join(system, agents):
    seed = agents[0]
    start = time.monotonic()
    threads = [threading.Thread(target=system.join, args=(agent, seed)) for agent in agents[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return poll_all(system, agents, lambda agent: len(system.alive(agent)) == len(agents), start,
                    "membership did not converge")


def poll_all(system, agents, done, start, failure, limit=60):
    """One polling thread per agent; returns when `done(agent)` held for all, measured from `start`."""
    finished = [None] * len(agents)

    def watch(index):
        while time.monotonic() - start < limit:
            if done(agents[index]):
                finished[index] = time.monotonic()
                return
            time.sleep(0.02)

    threads = [threading.Thread(target=watch, args=(index,)) for index in range(len(agents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(value is None for value in finished):
        raise TimeoutError(f"{system.name}: {failure} in {limit} s")
    return max(finished) - start


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_megabytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_megabytes(pid):
    """Proportional set size: shared pages (the same binary and libraries in N processes)
    divided among their users: what each extra agent really costs on this machine."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


class WireBytes:
    """iptables byte counters for traffic from or to a port range on loopback."""

    def __init__(self, ranges):
        self.ranges = ranges
        self.available = os.geteuid() == 0 and shutil.which("iptables") is not None
        self.chain = f"RUMORBENCH{os.getpid()}"
        if not self.available:
            return
        try:
            subprocess.run(["iptables", "-N", self.chain], check=True, capture_output=True)
            subprocess.run(["iptables", "-I", "OUTPUT", "-o", "lo", "-j", self.chain], check=True, capture_output=True)
            for name, (low, high) in ranges.items():
                span = f"{low}:{high}"
                for protocol in ("udp", "tcp"):
                    # Packets sent from an agent's port, and packets to it from ephemeral ports.
                    subprocess.run(["iptables", "-A", self.chain, "-p", protocol, "--sport", span,
                                    "-m", "comment", "--comment", name], check=True, capture_output=True)
                    subprocess.run(["iptables", "-A", self.chain, "-p", protocol, "!", "--sport", span,
                                    "--dport", span, "-m", "comment", "--comment", name], check=True, capture_output=True)
        except (subprocess.CalledProcessError, FileNotFoundError):
            self.available = False
            self.close()

    def read(self):
        totals = {name: 0 for name in self.ranges}
        if not self.available:
            return totals
        output = subprocess.run(["iptables", "-L", self.chain, "-v", "-x", "-n"], check=True, capture_output=True, text=True).stdout
        for line in output.splitlines():
            for name in self.ranges:
                if f"/* {name} */" in line:
                    totals[name] += int(line.split()[1])
        return totals

    def close(self):
        subprocess.run(["iptables", "-D", "OUTPUT", "-o", "lo", "-j", self.chain], capture_output=True)
        subprocess.run(["iptables", "-F", self.chain], capture_output=True)
        subprocess.run(["iptables", "-X", self.chain], capture_output=True)


def measure_idle(systems, clusters, wire, seconds):
    before_cpu = {s.name: [cpu_seconds(a.process.pid) for a in clusters[s.name]] for s in systems}
    before_bytes = wire.read()
    time.sleep(seconds)
    after_bytes = wire.read()
    result = {}
    for system in systems:
        agents = clusters[system.name]
        cpu = [(cpu_seconds(a.process.pid) - b) / seconds * 100 for a, b in zip(agents, before_cpu[system.name])]
        result[system.name] = {
            "idle_cpu_percent_per_agent": statistics.mean(cpu),
            "rss_mb_per_agent": statistics.mean(rss_megabytes(a.process.pid) for a in agents),
            "pss_mb_per_agent": statistics.mean(pss_megabytes(a.process.pid) for a in agents),
            "bytes_per_second_per_agent": ((after_bytes[system.name] - before_bytes[system.name]) / seconds / len(agents))
            if wire.available else None,
        }
    return result


def measure_dissemination(system, agents, updates):
    seen = {}
    condition = threading.Condition()

    def on_update(index):
        def record(key):
            with condition:
                seen.setdefault(key, set()).add(index)
                condition.notify_all()
        return record

    for index, agent in enumerate(agents):
        system.subscribe(agent, on_update(index))
    time.sleep(1)  # the streams are open
    latencies = []
    late = 0
    for update in range(updates):
        key = f"bench/{update}"
        start = time.monotonic()
        system.publish(agents[update % len(agents)], key)
        with condition:
            # Serf has no anti-entropy for events but its 30 s push-pull: wait past one.
            ok = condition.wait_for(lambda: len(seen.get(key, ())) == len(agents), timeout=2)
            if not ok:
                late += 1
                condition.wait_for(lambda: len(seen.get(key, ())) == len(agents), timeout=40)
        latencies.append(time.monotonic() - start)
        time.sleep(0.02)
    latencies.sort()
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[max(0, int(len(latencies) * 0.99 + 0.5) - 1)],
            "late": late}


def measure_detection(system, agents, kills):
    """Mean over `kills` agents killed one after another (a single kill's figure depends on
    where in the probe round it lands)."""
    took = []
    for round in range(kills):
        victim = agents[-1 - round]
        survivors = agents[:-1 - round]
        victim.kill9()
        start = time.monotonic()
        took.append(poll_all(system, survivors, lambda agent: victim.name in system.failed(agent), start,
                             "the kill was not detected by all"))
    return statistics.mean(took)


# --- main --------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--base-port", type=int, default=24000)
    parser.add_argument("--kills", type=int, default=3, help="agents killed one after another for the detection figure")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args()

    rumor_binary = os.environ.get("RUMOR_BIN", str(ROOT / ".build" / "release" / "rumor"))
    if not Path(rumor_binary).exists():
        sys.exit(f"no Rumor binary at {rumor_binary}: run `swift build -c release` first")
    systems = [Rumor(rumor_binary), Serf(build_serf())]
    n = options.nodes
    base = options.base_port
    ports = {"rumor": (base, base + 1000), "serf": (base + 2000, base + 3000)}
    logs = Path(tempfile.mkdtemp(prefix="serf-compare-"))
    wire = WireBytes({"rumor": (base, base + n - 1), "serf": (base + 2000, base + 2000 + n - 1)})
    clusters = {}
    figures = {s.name: {} for s in systems}
    try:
        for system in systems:
            gossip, control = ports[system.name]
            log = open(logs / f"{system.name}.log", "wb")
            clusters[system.name] = [system.start(i, gossip + i, control + i, log) for i in range(n)]
        for system in systems:
            for agent in clusters[system.name]:
                wait_until(lambda: system.ready(agent), 20, f"{agent.name} to start")
        print(f"{n} Rumor and {n} Serf agents running on loopback (logs in {logs})", file=sys.stderr)

        for system in systems:
            figures[system.name]["join_seconds"] = measure_join(system, clusters[system.name])
            print(f"{system.name}: membership converged in {figures[system.name]['join_seconds']:.3f} s", file=sys.stderr)
        time.sleep(2)
        for name, values in measure_idle(systems, clusters, wire, options.idle_seconds).items():
            figures[name].update(values)
        for system in systems:
            result = measure_dissemination(system, clusters[system.name], options.updates)
            figures[system.name]["dissemination_p50_seconds"] = result["p50"]
            figures[system.name]["dissemination_p99_seconds"] = result["p99"]
            figures[system.name]["updates_late_over_2s"] = result["late"]
            print(f"{system.name}: dissemination p50 {result['p50'] * 1000:.1f} ms p99 {result['p99'] * 1000:.1f} ms, "
                  f"{result['late']} updates took over 2 s", file=sys.stderr)
        for system in systems:
            figures[system.name]["detection_seconds"] = measure_detection(system, clusters[system.name], options.kills)
            print(f"{system.name}: kill -9 detected by all in {figures[system.name]['detection_seconds']:.2f} s", file=sys.stderr)
    finally:
        for agents in clusters.values():
            for agent in agents:
                agent.stop()
        wire.close()

    rows = [
        ("membership convergence (s)", "join_seconds", 0.5),
        ("dissemination p50 (ms)", "dissemination_p50_seconds", None),
        ("dissemination p99 (ms)", "dissemination_p99_seconds", 0.1),
        ("failure detection, mean (s)", "detection_seconds", 1.0),
        ("idle CPU per agent (% core)", "idle_cpu_percent_per_agent", 1.0),
        ("RSS per agent (MB)", "rss_mb_per_agent", 1.0),
        ("PSS per agent (MB)", "pss_mb_per_agent", None),
        ("bytes/s per agent, idle", "bytes_per_second_per_agent", None),
    ]
    print(f"\nRumor vs Serf 0.8.2, {n} agents each on loopback, LAN profile, {options.updates} updates\n")
    print(f"{'figure':32} {'Rumor':>10} {'Serf':>10} {'ratio':>8} {'target':>8}")
    table = []
    for label, key, target in rows:
        rumor, serf = figures["rumor"].get(key), figures["serf"].get(key)
        scale = 1000 if "(ms)" in label else 1
        if rumor is None or serf is None:
            print(f"{label:32} {'n/a':>10} {'n/a':>10}")
            continue
        # A peer figure of 0 (idle CPU below one clock tick in a short run) has no ratio.
        ratio = rumor / serf if serf else None
        verdict = "" if target is None or ratio is None else ("ok" if ratio <= target else "MISSED")
        shown = "n/a" if ratio is None else f"{ratio:.3f}"
        print(f"{label:32} {rumor * scale:10.2f} {serf * scale:10.2f} {shown:>8} {('≤ ' + str(target)) if target else '':>8} {verdict}")
        table.append({"figure": label, "rumor": rumor * scale, "serf": serf * scale, "ratio": ratio, "target": target})
    if options.json:
        Path(options.json).write_text(json.dumps({"nodes": n, "updates": options.updates, "rows": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
