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
for name in ("go-streams-plain.hex", "go-streams-compressed.hex"):
    for stream in hex_lines(name):
        for mode in (0, 1):
            write("FuzzStream", bytes([mode]) + stream)
for kind in range(1, 5):
    write("FuzzReplication", b"RK\x01" + bytes([kind]) + b"\x00" * 8)
write("FuzzReplication", b"KR\x01\x01\x02\x10" + b"k" * 16)
write("FuzzReplication", b"KR\x01\x02\x00\x00\x01\x10" + b"k" * 16)
bodies = [
    {"key": "k", "value": "v", "ttlSeconds": 30, "ephemeral": False, "wait": "all", "timeoutSeconds": 5},
    {"entries": [{"key": "a", "value": "1"}, {"key": "b", "value": None}]},
    {"key": "k"},
    {"addresses": ["127.0.0.1:7946"]},
    {"operation": "install", "key": "AAAAAAAAAAAAAAAAAAAAAA=="},
]
for index, body in enumerate(bodies):
    write("FuzzAPI", bytes([index]) + json.dumps(body).encode())
