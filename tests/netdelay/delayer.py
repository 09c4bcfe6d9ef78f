#!/usr/bin/env python3
"""A user-space packet delayer for network namespaces, on NFQUEUE (this kernel has no netem).

One process serves every host namespace of a test network: for each it opens a netfilter-queue
netlink socket *inside* that namespace (setns on this thread, socket, setns back), so that one
loop sees the packets queued by all of them. Each host's iptables sends the gossip packets it
emits on eth0 to the queue (`tests/netdelay/delayed_network.py` installs the rules, on OUTPUT only, never
on loopback); the delayer holds each packet for the one-way delay of its (source, destination)
pair, plus a uniform jitter in ±jitter, drops it with the pair's loss probability, and accepts it
when it is due: the whole one-way delay is paid at the sender's egress.

Verdicts. NetfilterQueue's `set_verdict` must come from the thread that reads the queue; a
`Packet` may be kept after its callback returns (only its payload goes), and `accept()` later
sends the verdict by packet id. So the one thread here reads every queue without blocking when
select says it is readable (`run(block=False)`), pushes (due, seq, packet) on a heap in the
callback, and accepts whatever is due each time round; select's timeout is the time to the next
due packet. Packets go out in order of due time (with jitter, a later packet may overtake).

It also counts, per (source, destination), the packets and bytes it saw, those that carry a
Rumor replication frame (the `RK` magic and the format the codec speaks, read from
Sources/RumorWire/ReplicationCodec.swift), and those it dropped; and how late each
release was against its due time, the delayer's own error.

Control: a Unix stream socket, one JSON request per connection, one JSON answer:
`{"op": "ping"}`, `{"op": "set", "delay_ms": M, "jitter_ms": M, "loss": M}` (N×N matrices,
row = source host, column = destination host; each key optional), `{"op": "counts"}`,
`{"op": "reset"}` (zeroes the counters). SIGTERM or SIGINT: releases every held packet and exits.

    delayer.py --control /tmp/d.sock --host NETNS=10.213.7.1 --host NETNS2=10.213.7.2 [--queue 0]
"""

import argparse
import ctypes
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time

from netfilterqueue import NetfilterQueue

CLONE_NEWNET = 0x40000000
NETLINK_NETFILTER = 12
PR_SET_PDEATHSIG = 1


def replication_magic() -> bytes:
    """`ReplicationCodec.magic`, read from its one definition (the format byte changes with the
    frame format)."""
    import pathlib
    import re
    source = pathlib.Path(__file__).resolve().parents[2] / "Sources/RumorWire/ReplicationCodec.swift"
    found = re.search(r"static let magic: \[UInt8\] = \[0x52, 0x4B, (\d+)\]", source.read_text())
    if not found:
        raise SystemExit(f"no replication frame magic in {source}")
    return b"RK" + bytes([int(found.group(1))])


REPLICATION_MAGIC = replication_magic()
_libc = ctypes.CDLL(None, use_errno=True)


def netlink_socket_in(namespace: str) -> socket.socket:
    """A NETLINK_NETFILTER socket created in network namespace `namespace` (`ip netns` name);
    this thread is back in its own namespace when it returns."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        finally:
            if _libc.setns(here, CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"setns back: {os.strerror(error)}")
    finally:
        os.close(here)
        os.close(there)


def matrix(size, value=0.0):
    return [[value] * size for _ in range(size)]


class Delayer:
    def __init__(self, hosts: list[tuple[str, str]], queue_number: int, seed: int | None):
        self.names = [name for name, _ in hosts]
        self.index_of = {socket.inet_aton(address): index for index, (_, address) in enumerate(hosts)}
        size = len(hosts)
        self.delay = matrix(size)  # seconds
        self.jitter = matrix(size)
        self.loss = matrix(size)
        self.random = random.Random(seed)
        self.heap: list[tuple[float, int, object]] = []
        self.sequence = 0
        self.reset()
        self.queues = {}  # fd -> (host index, NetfilterQueue, netlink socket)
        for index, name in enumerate(self.names):
            netlink = netlink_socket_in(name)
            queue = NetfilterQueue(sockfd=netlink.fileno())
            # Copy whole packets (gossip packets are small; the payload is read for the frame
            # check), a long queue and a large receive buffer: nothing may be dropped for want of room.
            queue.bind(queue_number, lambda packet, source=index: self.on_packet(source, packet),
                       max_len=65536, range=65535, sock_len=4 * 1024 * 1024)
            fd = queue.get_fd()
            os.set_blocking(fd, False)
            self.queues[fd] = (index, queue, netlink)

    def reset(self):
        size = len(self.names)
        self.packets = matrix(size, 0)
        self.bytes = matrix(size, 0)
        self.replication = matrix(size, 0)
        self.dropped = matrix(size, 0)
        self.other = 0  # queued packets to an address not in the network, passed at once
        self.released = 0
        self.late_total = 0.0
        self.late_max = 0.0
        self.held_max = 0

    def on_packet(self, source: int, packet):
        now = time.monotonic()
        payload = packet.get_payload()
        target = self.index_of.get(payload[16:20])
        if target is None:
            self.other += 1
            packet.accept()
            return
        self.packets[source][target] += 1
        self.bytes[source][target] += int.from_bytes(payload[2:4], "big")
        if REPLICATION_MAGIC in payload[(payload[0] & 15) * 4:]:
            self.replication[source][target] += 1
        if self.loss[source][target] > 0 and self.random.random() < self.loss[source][target]:
            self.dropped[source][target] += 1
            packet.drop()
            return
        delay = self.delay[source][target]
        jitter = self.jitter[source][target]
        if jitter > 0:
            delay = max(0.0, delay + self.random.uniform(-jitter, jitter))
        if delay <= 0:
            packet.accept()
            return
        self.sequence += 1
        heapq.heappush(self.heap, (now + delay, self.sequence, packet))
        self.held_max = max(self.held_max, len(self.heap))

    def release_due(self):
        now = time.monotonic()
        while self.heap and self.heap[0][0] <= now:
            due, _, packet = heapq.heappop(self.heap)
            packet.accept()
            late = now - due
            self.released += 1
            self.late_total += late
            self.late_max = max(self.late_max, late)

    def release_all(self):
        while self.heap:
            heapq.heappop(self.heap)[2].accept()

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "hosts": self.names}
        if op == "set":
            size = len(self.names)
            for key, target, scale in (("delay_ms", "delay", 1e-3), ("jitter_ms", "jitter", 1e-3), ("loss", "loss", 1)):
                if key in request:
                    values = request[key]
                    if len(values) != size or any(len(row) != size for row in values):
                        return {"ok": False, "error": f"{key} must be a {size}x{size} matrix"}
                    setattr(self, target, [[float(value) * scale for value in row] for row in values])
            return {"ok": True}
        if op == "counts":
            return {"ok": True, "packets": self.packets, "bytes": self.bytes, "replication": self.replication,
                    "dropped": self.dropped, "other": self.other, "held": len(self.heap), "held_max": self.held_max,
                    "released": self.released, "late_max_ms": self.late_max * 1e3,
                    "late_mean_ms": self.late_total / self.released * 1e3 if self.released else 0.0}
        if op == "reset":
            self.reset()
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def serve_control(self, server: socket.socket):
        connection, _ = server.accept()
        with connection:
            connection.settimeout(2)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                reply = self.answer(json.loads(data))
            except (OSError, ValueError) as error:
                reply = {"ok": False, "error": str(error)}
            try:
                connection.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    def run(self, control_path: str):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(control_path):
            os.unlink(control_path)
        server.bind(control_path)
        server.listen(16)
        # A signal wakes select through this pipe (select resumes after EINTR by itself).
        wakeup, wakeup_writer = os.pipe()
        os.set_blocking(wakeup, False)
        os.set_blocking(wakeup_writer, False)
        signal.set_wakeup_fd(wakeup_writer)
        readable = [server.fileno(), wakeup, *self.queues]
        stopping = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.append(True))
        print(f"delayer ready: {len(self.names)} namespaces", flush=True)
        while not stopping:
            # select, not epoll: its timeout has microseconds (epoll rounds up to a millisecond).
            timeout = None if not self.heap else max(0.0, self.heap[0][0] - time.monotonic())
            try:
                ready, _, _ = select.select(readable, [], [], timeout)
            except InterruptedError:
                continue
            for fd in ready:
                if fd == wakeup:
                    os.read(wakeup, 512)
                elif fd == server.fileno():
                    self.serve_control(server)
                else:
                    self.queues[fd][1].run(block=False)
            self.release_due()
        self.release_all()
        for _, queue, netlink in self.queues.values():
            queue.unbind()
            netlink.close()
        server.close()
        os.unlink(control_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", required=True, help="path of the control Unix socket")
    parser.add_argument("--host", action="append", required=True, metavar="NETNS=ADDRESS",
                        help="a host namespace and its eth0 address, in host-index order (repeat)")
    parser.add_argument("--queue", type=int, default=0, help="NFQUEUE number in every namespace (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed for jitter and loss")
    args = parser.parse_args()
    hosts = [tuple(host.split("=", 1)) for host in args.host]
    # Stop with the test that started us, even if it is killed: held sockets keep namespaces alive.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    try:  # ahead of the agents for the CPU, so that a busy machine delays packets less past their due time
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        pass
    Delayer(hosts, args.queue, args.seed).run(args.control)


if __name__ == "__main__":
    sys.exit(main())
