"""Garbage on the gossip port is dropped and counted; the agent keeps working."""

import random
import socket
import struct

import msgpack

from conftest import wait_until

# memberlist's message type bytes (net.go).
INDIRECT_PING = 1
ALIVE = 4


def indirect_ping_request(seq, target_ip: bytes, target_port, node="victim", source_ip=None, source_port=0, nack=True) -> bytes:
    """A memberlist indirect-ping request (`indirectPingReq`): asks the receiver to probe
    `target_ip:target_port` (4 or 16 raw bytes) and answer to the source (or the sender)."""
    body = {"SeqNo": seq, "Target": target_ip, "Port": target_port, "Node": node, "Nack": nack, "SourceNode": "spoofer"}
    if source_ip is not None:
        body.update({"SourceAddr": source_ip, "SourcePort": source_port})
    return bytes([INDIRECT_PING]) + msgpack.packb(body, use_bin_type=True)


def alive_message(node, ip: bytes, port, incarnation=1) -> bytes:
    """A memberlist `alive` announcing `node` at `ip:port` (Serf's protocol versions)."""
    body = {"Incarnation": incarnation, "Node": node, "Addr": ip, "Port": port, "Meta": b"", "Vsn": bytes([1, 5, 2, 2, 5, 5])}
    return bytes([ALIVE]) + msgpack.packb(body, use_bin_type=True)


def garbage_packets(rng):
    yield b"\xff"
    yield b""[:0] + b"\x00"  # ping type byte, no body
    yield b"\x00\x81\xa5SeqNo"  # map cut off after the key
    yield b"\x07\x05\x00\x10"  # compound claiming 5 parts, lengths cut off
    yield b"\x07\x01\xff\xff\x00"  # compound part longer than the packet
    yield b"\x04\xdf\xff\xff\xff\xff"  # alive with a map of 4 billion entries
    yield b"\x04\x81\xa4Node\xdb\xff\xff\xff\xf0"  # a 4 GiB string header
    yield b"\x09\x82\xa4Algo\x00\xa3Buf\xa2\xff\xff"  # LZW garbage
    yield b"\x0c\x00\x00\x00\x00\x00"  # CRC mismatch
    yield b"\xf4\x05red"  # label cut off
    for _ in range(300):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1400)))


def test_malformed_udp_and_tcp_input_is_dropped_and_counted(swarm):
    agent = swarm.agent("target")
    peer = swarm.agent("peer", join=[agent.address])
    wait_until(lambda: len(agent.members()) == 2, 5, "two-node cluster forms")

    rng = random.Random(42)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for packet in garbage_packets(rng):
            udp.sendto(packet, ("127.0.0.1", agent.port))

    for stream in [b"\x06\x83\xa5Nodes\xce\xff\xff\xff\xff", b"\x06\xde\xff", b"\xff" * 100, struct.pack(">B", 99) + b"x" * 50]:
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as tcp:
            tcp.sendall(stream)
            tcp.shutdown(socket.SHUT_WR)
            tcp.settimeout(5)
            try:
                tcp.recv(100)
            except OSError:
                pass

    def dropped():
        counters = agent.info()["counters"]
        return sum(v for k, v in counters.items() if k.startswith("dropped")) >= 250 and counters
    counters, _ = wait_until(dropped, 5, "the agent counts the dropped packets")
    assert agent.alive(), "the agent survived"
    assert agent.members() == {"target": "alive", "peer": "alive"}
    print("dropped counters:", {k: v for k, v in counters.items() if k.startswith("dropped")})
