"""Writes starting inputs for each fuzz target into CORPUS_DIR/<target> (idempotent)."""
import hashlib
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1])
fixtures = root / "Tests/RumorWireTests/Fixtures"


def write(target, data: bytes):
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def hex_lines(name):
    for line in (fixtures / name).read_text().split():
        if line:
            yield bytes.fromhex(line)


for name in ("go-packets-plain.hex", "go-packets-compressed.hex"):
    for packet in hex_lines(name):
        for mode in (0, 1, 2):
            write("FuzzPacket", bytes([mode]) + packet)
# Multicast DNS as Serf's -discover sends and answers it (docs/serf-wire.md §10), the answer with
# compressed names as Go's miekg/dns writes them.
def dns_name(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")) + b"\0"


service = dns_name("_serf_alpha._tcp.local.")
write("FuzzPacket", bytes([3]) + bytes(4) + b"\x00\x01" + bytes(6) + service + b"\x00\x0c\x00\x01")
answer = bytes.fromhex("000084000000000400000000") + service + bytes.fromhex("000c000100000078") + b"\x00\x05\x02a1\xc0\x0c"
instance_offset = 12 + len(service) + 10
srv_target = b"\x02a1\x05local\x00"
answer += bytes([0xc0, instance_offset]) + bytes.fromhex("0021000100000078") + (6 + len(srv_target)).to_bytes(2, "big") \
    + bytes.fromhex("000a00011eaa") + srv_target
host_offset = len(answer) - len(srv_target)
answer += bytes([0xc0, host_offset]) + bytes.fromhex("00010001000000780004") + bytes([10, 0, 0, 1])
txt = b"Serf 'alpha' cluster"
answer += bytes([0xc0, instance_offset]) + bytes.fromhex("0010000100000078") + (len(txt) + 1).to_bytes(2, "big") + bytes([len(txt)]) + txt
write("FuzzPacket", bytes([3]) + answer)
for name in ("go-streams-plain.hex", "go-streams-compressed.hex"):
    for stream in hex_lines(name):
        for mode in (0, 1):
            write("FuzzStream", bytes([mode]) + stream)
for kind in range(1, 5):
    write("FuzzReplication", b"RK\x02" + bytes([kind]) + b"\x00" * 8)
write("FuzzReplication", b"KR\x01\x01\x02\x10" + b"k" * 16)
write("FuzzReplication", b"KR\x01\x02\x00\x00\x01\x10" + b"k" * 16)
# Serf messages captured from real agents (docs/serf-wire.md, Appendix A).
for text in (
    "0182a54c54696d6501a44e6f6465a66e6f64652d62",
    "0083a54c54696d6503a44e6f6465a66e6f64652d63a55072756e65c2",
    "0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164a676312e322e33",
    "048ba441646472a47f000001a746696c7465727391b40182a445787072a3776562a3546167a4726f6c65a5466c61677301a24944ce57433d1c"
    "a54c54696d6501a44e616d65a6757074696d65a75061796c6f6164a36e6f77a4506f7274cd6979ab52656c6179466163746f7200aa536f75"
    "7263654e6f6465a66e6f64652d61a754696d656f7574cebebc2000",
    "0585a5466c61677301a446726f6da66e6f64652d61a24944ce57433d1ca54c54696d6501a75061796c6f6164c0",
    "0982a8446573744164647283a24950a47f000001a4506f7274cd6979a45a6f6e65a0a8446573744e616d65a66e6f64652d610585a5466c61677300"
    "a446726f6da66e6f64652d61a24944ce7cf781efa54c54696d6509a75061796c6f6164a0",
    "0286aa4576656e744c54696d6504a64576656e747394c0c0c082a64576656e74739182a44e616d65a66465706c6f79a75061796c6f6164a27631"
    "a54c54696d6503a54c54696d6505ab4c6566744d656d6265727390aa51756572794c54696d6502ac5374617475734c54696d657381a66e6f6465"
    "2d6101",
    "ff82a4726f6c65a3776562a26463a465617374",
    "0182a445787072a3776562a3546167a4726f6c65",
    "0781a34b6579a0",
):
    write("FuzzReplication", bytes.fromhex(text))
bodies = [
    {"key": "k", "value": "v", "ttlSeconds": 30, "ephemeral": False, "wait": "all", "timeoutSeconds": 5},
    {"entries": [{"key": "a", "value": "1"}, {"key": "b", "value": None}]},
    {"key": "k"},
    {"addresses": ["127.0.0.1:7946"]},
    {"operation": "install", "key": "AAAAAAAAAAAAAAAAAAAAAA=="},
    {"name": "uptime", "payload": "x", "nodes": ["a"], "tags": ["role=web"], "timeoutSeconds": 2, "ack": True, "relayFactor": 1},
    {"name": "deploy", "payload": "v1", "coalesce": True},
    {"set": {"role": "web"}, "delete": ["dc"]},
]
for index, body in enumerate(bodies):
    write("FuzzAPI", bytes([index]) + json.dumps(body).encode())
