"""A private network of Linux network namespaces for fault injection (root only).

One hub namespace holds a bridge; each host namespace gets a veth pair to it, an address in
10.213.<net>.0/24 and loopback. Faults are iptables rules inside the host namespaces, on eth0
only (loopback, where clients talk to their local agent, is never touched):
loss (`-m statistic --mode random --probability P -j DROP`) and partitions (DROP to/from the
addresses of the other side). `close()` removes everything, and runs at exit even on failure.
"""

import atexit
import os
import subprocess


def run(*args, check=True):
    result = subprocess.run(list(args), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def require_root_tools():
    problems = []
    if os.geteuid() != 0:
        problems.append("the fault suite creates network namespaces and needs root")
    for tool in ("ip", "iptables"):
        if run("which", tool, check=False).returncode != 0:
            problems.append(f"`{tool}` is missing: apt-get install iproute2 iptables")
    return problems


class Network:
    def __init__(self, hosts: int, tag: str | None = None):
        self.tag = tag or f"rf{os.getpid() % 100000}"
        self.net = 1 + os.getpid() % 250
        self.hub = f"{self.tag}-hub"
        self.hosts = [f"{self.tag}-h{index}" for index in range(hosts)]
        self.addresses = [f"10.213.{self.net}.{index + 1}" for index in range(hosts)]
        self.closed = False
        atexit.register(self.close)
        try:
            self._create()
        except Exception:
            self.close()
            raise

    def _create(self):
        run("ip", "netns", "add", self.hub)
        self.exec_in(self.hub, "ip", "link", "add", "br0", "type", "bridge")
        self.exec_in(self.hub, "ip", "link", "set", "br0", "up")
        for index, (host, address) in enumerate(zip(self.hosts, self.addresses)):
            run("ip", "netns", "add", host)
            outer, inner = f"{self.tag}b{index}", f"{self.tag}i{index}"
            run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            run("ip", "link", "set", outer, "netns", self.hub)
            run("ip", "link", "set", inner, "netns", host)
            self.exec_in(self.hub, "ip", "link", "set", outer, "master", "br0")
            self.exec_in(self.hub, "ip", "link", "set", outer, "up")
            self.exec_in(host, "ip", "link", "set", inner, "name", "eth0")
            self.exec_in(host, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self.exec_in(host, "ip", "link", "set", "eth0", "up")
            self.exec_in(host, "ip", "link", "set", "lo", "up")

    def exec_in(self, namespace, *args, check=True):
        return run("ip", "netns", "exec", namespace, *args, check=check)

    def command(self, index, *args):
        """argv running `args` inside host `index`."""
        return ["ip", "netns", "exec", self.hosts[index], *args]

    # Faults -------------------------------------------------------------------------------

    def set_loss(self, probability: float, hosts=None):
        """Drops each packet arriving on eth0 with `probability` (0 clears)."""
        for index in hosts if hosts is not None else range(len(self.hosts)):
            self.exec_in(self.hosts[index], "iptables", "-F", "RUMOR_LOSS", check=False)
            self.exec_in(self.hosts[index], "iptables", "-N", "RUMOR_LOSS", check=False)
            self.exec_in(self.hosts[index], "iptables", "-C", "INPUT", "-i", "eth0", "-j", "RUMOR_LOSS", check=False).returncode == 0 \
                or self.exec_in(self.hosts[index], "iptables", "-A", "INPUT", "-i", "eth0", "-j", "RUMOR_LOSS")
            if probability > 0:
                self.exec_in(self.hosts[index], "iptables", "-A", "RUMOR_LOSS", "-m", "statistic", "--mode", "random",
                             "--probability", f"{probability}", "-j", "DROP")

    def partition(self, *groups):
        """Cuts every link between hosts of different groups (lists of host indexes)."""
        side = {host: number for number, group in enumerate(groups) for host in group}
        for index, host in enumerate(self.hosts):
            self.exec_in(host, "iptables", "-N", "RUMOR_CUT", check=False)
            self.exec_in(host, "iptables", "-F", "RUMOR_CUT")
            # Both chains: the OUTPUT rule also makes the agent's own sends fail with EPERM,
            # which closes a NIO datagram channel (the agent must bind it again).
            for chain in ("INPUT", "OUTPUT"):
                if self.exec_in(host, "iptables", "-C", chain, "-j", "RUMOR_CUT", check=False).returncode != 0:
                    self.exec_in(host, "iptables", "-I", chain, "-j", "RUMOR_CUT")
            for other, address in enumerate(self.addresses):
                if other in side and index in side and side[other] != side[index]:
                    self.exec_in(host, "iptables", "-A", "RUMOR_CUT", "-s", address, "-j", "DROP")
                    self.exec_in(host, "iptables", "-A", "RUMOR_CUT", "-d", address, "-j", "DROP")

    def heal(self):
        """Removes every partition and all loss."""
        for host in self.hosts:
            self.exec_in(host, "iptables", "-F", "RUMOR_CUT", check=False)
            self.exec_in(host, "iptables", "-F", "RUMOR_LOSS", check=False)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for namespace in [*self.hosts, self.hub]:
            # Any process left in a namespace would keep it alive: kill them first.
            pids = run("ip", "netns", "pids", namespace, check=False).stdout.split()
            for pid in pids:
                run("kill", "-9", pid, check=False)
            run("ip", "netns", "delete", namespace, check=False)
