"""Network namespaces with real one-way delays, jitter and loss per (source, destination) pair.

`DelayedNetwork` is tests/faults/netns.py's `Network` (a bridge, one namespace per host at
10.213.<net>.<i+1>, loopback up) plus the NFQUEUE delayer (`delayer.py`, one process for all
hosts): each host's OUTPUT chain sends what it emits on eth0 to UDP or TCP port 7946 (either
end: requests and answers), and optionally ICMP, to the delayer, which holds it for the pair's
delay. Loopback is never queued: clients and their local agent talk at full speed. Partitions
and INPUT loss from `Network` still apply (a cut drops before the delay).

    with DelayedNetwork(3) as net:
        net.set_delays(50)                        # 50 ms one way between every pair
        net.set_delays(lambda s, d: 200 if {s, d} == {0, 2} else 10, jitter_ms=2, loss=0.1)
        net.counts()                              # packets per (source, destination), and more
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from netns import Network, require_root_tools  # noqa: E402

DELAYER = Path(__file__).resolve().parent / "delayer.py"
GOSSIP_PORT = 7946


def delay_tools_missing() -> list[str]:
    """What is missing to run delayed networks here (empty when all is well)."""
    problems = require_root_tools()
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        problems.append("the Python module `netfilterqueue` is missing: "
                        "apt-get install libnetfilter-queue-dev && pip install NetfilterQueue")
    return problems


def _matrix(size, value):
    """An N×N matrix from a number, a function (source, destination) -> number, or a matrix.
    The diagonal (a host to itself) is 0: that traffic does not leave the host."""
    if callable(value):
        return [[0 if s == d else value(s, d) for d in range(size)] for s in range(size)]
    if isinstance(value, (int, float)):
        return [[0 if s == d else value for d in range(size)] for s in range(size)]
    assert len(value) == size and all(len(row) == size for row in value), f"need a {size}x{size} matrix"
    return value


def regions_matrix(region_of: list[int], delay_between: list[list[float]]):
    """One-way delays host×host from each host's region and a region×region delay matrix."""
    return lambda s, d: delay_between[region_of[s]][region_of[d]]


class Counts:
    """Counter matrices from the delayer (row = source host, column = destination)."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.packets, self.bytes = raw["packets"], raw["bytes"]
        self.replication, self.dropped = raw["replication"], raw["dropped"]

    @staticmethod
    def _sum(matrix, among=None):
        among = range(len(matrix)) if among is None else among
        return sum(matrix[s][d] for s in among for d in among)

    def total_packets(self, among=None):
        """Packets the delayer saw (dropped ones included) between hosts of `among` (default all)."""
        return self._sum(self.packets, among)

    def replication_packets(self, among=None):
        """Those of them that carry a Rumor replication frame."""
        return self._sum(self.replication, among)

    def total_dropped(self, among=None):
        return self._sum(self.dropped, among)


class DelayedNetwork(Network):
    def __init__(self, hosts: int, tag: str | None = None, tcp: bool = True, icmp: bool = False,
                 ports=(GOSSIP_PORT,), queue: int = 0, seed: int | None = None):
        """Creates the namespaces, starts the delayer and queues each host's egress gossip to it
        (UDP on `ports`, TCP too with `tcp`, ICMP with `icmp`, for ping). No delay until
        `set_delays`. Everything is removed by `close()`, at exit too, even after a failure.
        `tag` names the namespaces (default `nd<pid>`): networks alive at once need different tags."""
        self.delayer = None
        self.workdir = Path(tempfile.mkdtemp(prefix="rumor-netdelay-"))
        self.control = str(self.workdir / "delayer.sock")
        super().__init__(hosts, tag or f"nd{os.getpid() % 100000}")
        try:
            self._start_delayer(queue, seed)
            for host in self.hosts:
                self._queue_egress(host, queue, tcp, icmp, ports)
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _start_delayer(self, queue, seed):
        args = [sys.executable, str(DELAYER), "--control", self.control, "--queue", str(queue)]
        for host, address in zip(self.hosts, self.addresses):
            args += ["--host", f"{host}={address}"]
        if seed is not None:
            args += ["--seed", str(seed)]
        self.delayer_log = open(self.workdir / "delayer.log", "wb")
        self.delayer = subprocess.Popen(args, stdout=self.delayer_log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.delayer.poll() is not None:
                raise RuntimeError(f"the delayer exited with {self.delayer.returncode}: {self.delayer_log_text()}")
            try:
                if self.request({"op": "ping"})["ok"]:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the delayer did not answer within 20 s: {self.delayer_log_text()}")

    def delayer_log_text(self) -> str:
        return (self.workdir / "delayer.log").read_text(errors="replace")[-3000:]

    def _queue_egress(self, host, queue, tcp, icmp, ports):
        target = ["-j", "NFQUEUE", "--queue-num", str(queue)]
        self.exec_in(host, "iptables", "-N", "RUMOR_DELAY")
        for protocol in ("udp", "tcp") if tcp else ("udp",):
            for port in ports:
                for end in ("--dport", "--sport"):
                    self.exec_in(host, "iptables", "-A", "RUMOR_DELAY", "-p", protocol, end, str(port), *target)
        if icmp:
            self.exec_in(host, "iptables", "-A", "RUMOR_DELAY", "-p", "icmp", *target)
        self.exec_in(host, "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "RUMOR_DELAY")

    def request(self, message: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(self.control)
            client.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = client.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        if not reply.get("ok"):
            raise RuntimeError(f"delayer refused {message.get('op')}: {reply.get('error')}")
        return reply

    def check_delayer(self):
        """Raises if the delayer died (its hosts' gossip would be black-holed)."""
        if self.delayer is None or self.delayer.poll() is not None:
            raise RuntimeError(f"the delayer is not running: {self.delayer_log_text()}")

    def set_delays(self, one_way_ms=0, jitter_ms=0, loss=0.0):
        """Sets each pair's one-way delay (ms), jitter (± ms, uniform) and loss (probability),
        each a number for every pair, a function (source, destination) -> number, or an N×N
        matrix. Applies to packets queued from now on."""
        self.check_delayer()
        size = len(self.hosts)
        self.request({"op": "set", "delay_ms": _matrix(size, one_way_ms), "jitter_ms": _matrix(size, jitter_ms),
                      "loss": _matrix(size, loss)})

    def counts(self) -> Counts:
        self.check_delayer()
        return Counts(self.request({"op": "counts"}))

    def reset_counts(self):
        self.check_delayer()
        self.request({"op": "reset"})

    def close(self):
        if getattr(self, "delayer", None) is not None and self.delayer.poll() is None:
            self.delayer.terminate()
            try:
                self.delayer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.delayer.kill()
                self.delayer.wait()
        super().close()


def ping_rtt_ms(network: Network, source: int, destination: int, count: int = 20, interval: float = 0.01,
                size: int = 56) -> dict:
    """Pings host `destination` from host `source`: {min, avg, max, mdev} in ms and the loss."""
    result = network.exec_in(network.hosts[source], "ping", "-q", "-n", "-c", str(count), "-i", str(interval),
                             "-s", str(size), "-W", "5", network.addresses[destination], check=False)
    stats = {"loss": None}
    for line in result.stdout.splitlines():
        if "packet loss" in line:
            stats["loss"] = float(line.split("%")[0].split()[-1]) / 100
        if line.startswith(("rtt", "round-trip")):
            values = line.split("=")[1].split()[0].split("/")
            stats.update(zip(("min", "avg", "max", "mdev"), map(float, values)))
    if "avg" not in stats:
        raise RuntimeError(f"ping {network.addresses[destination]} from {network.hosts[source]} failed: "
                           f"{result.stdout}{result.stderr}")
    return stats


def across_delayed_link(measure, one_way_ms: float = 40, jitter_ms: float = 0, icmp: bool = True, **network_args):
    """Runs `measure(network)` across a link delayed `one_way_ms` each way between two fresh
    namespaces (hosts 0 and 1 at `network.addresses`; run programs there with
    `network.command(i, ...)` and bind them to `network.addresses[i]:7946`, the queued port) and
    returns what it returns; tears the namespaces and delayer down afterwards, even on failure
    (processes still running in the namespaces are killed). The link's RTT is checked first
    (the fastest of 5 pings, within 5 ms of twice the delay). For example, Serf's view of the link:

        def serf_rtt(net):
            for i in (0, 1):
                subprocess.Popen(net.command(i, serf, "agent", "-node", f"s{i}", "-bind",
                                 f"{net.addresses[i]}:7946", "-rpc-addr", "127.0.0.1:7373",
                                 *(["-join", f"{net.addresses[0]}:7946"] if i else [])))
            ...  # wait for the join and a few probes, then:
            return subprocess.run(net.command(0, serf, "rtt", "-rpc-addr", "127.0.0.1:7373", "s1"), ...)
        across_delayed_link(serf_rtt, one_way_ms=40)
    """
    network_args.setdefault("tag", f"nl{os.getpid() % 100000}")
    with DelayedNetwork(2, icmp=icmp, **network_args) as network:
        network.set_delays(one_way_ms, jitter_ms)
        if icmp:
            rtt = ping_rtt_ms(network, 0, 1, count=5, interval=0.05)
            if abs(rtt["min"] - 2 * one_way_ms) > 5 + 2 * jitter_ms:
                raise RuntimeError(f"the delayed link's RTT is {rtt['min']:.1f} ms at least, not {2 * one_way_ms} ms")
        return measure(network)


_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("up", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

_PROBE = """
import socket, struct, sys, threading, time
server, port, me, rate, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
rtts = []
def receive():
    s.settimeout(1.5)
    while True:
        try:
            data = s.recv(2048)
        except socket.timeout:
            return
        rtts.append((time.monotonic() - struct.unpack("d", data[:8])[0]) * 1e3)
receiver = threading.Thread(target=receive)
receiver.start()
start, sent = time.monotonic(), 0
while time.monotonic() - start < seconds:
    due = start + sent / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s.sendto(struct.pack("d", time.monotonic()) + bytes(56), (server, port))
    sent += 1
took = time.monotonic() - start
receiver.join()
print(sent, took, " ".join("%.3f" % x for x in rtts))
"""


def udp_rtt_ms(network: Network, client: int, server: int, rate: float = 20, seconds: float = 2,
               port: int = GOSSIP_PORT) -> dict:
    """Sends UDP datagrams from host `client` to an echo on host `server`'s `port` (queued as
    gossip) at `rate` per second for `seconds`, each carrying its send time; returns the round
    trips in ms ({sent, received, rate, min, avg, p50, p99, max}): what an agent's UDP sees."""
    echo = subprocess.Popen(network.command(server, sys.executable, "-c", _ECHO, network.addresses[server], str(port)),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout.readline().strip() == "up", "the UDP echo did not start"
        result = subprocess.run(network.command(client, sys.executable, "-c", _PROBE, network.addresses[server], str(port),
                                                network.addresses[client], str(rate), str(seconds)),
                                capture_output=True, text=True, timeout=seconds + 30)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        sent, took, *values = result.stdout.split()
        rtts = sorted(float(x) for x in values)
        if not rtts:
            raise RuntimeError(f"no UDP echo came back from {network.addresses[server]}:{port}")
        return {"sent": int(sent), "received": len(rtts), "rate": int(sent) / float(took), "min": rtts[0],
                "avg": sum(rtts) / len(rtts), "p50": rtts[len(rtts) // 2], "p99": rtts[int(len(rtts) * 0.99)],
                "max": rtts[-1]}
    finally:
        echo.kill()
        echo.wait()


if __name__ == "__main__":
    # Accuracy check: python3 tests/netdelay/delayed_network.py [ONE_WAY_MS]
    one_way = float(sys.argv[1]) if len(sys.argv) > 1 else 50
    with DelayedNetwork(2, icmp=True) as net:
        net.set_delays(one_way)
        print("slow ping:", ping_rtt_ms(net, 0, 1, count=20, interval=0.05))
        print("UDP 20/s:", udp_rtt_ms(net, 0, 1, rate=20, seconds=2))
        print("UDP 2000/s:", udp_rtt_ms(net, 0, 1, rate=2000, seconds=5))
        print("counts:", {k: v for k, v in net.counts().raw.items() if k != "ok"})
