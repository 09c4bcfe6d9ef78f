#!/usr/bin/env python3
"""Catch-up of a large state: one agent holds N keys of 100-byte values, a second joins it and
the time until the joiner holds all N is measured (and its RSS, and the seed's). Prints the
figures; with --baseline-keys also the time for a state that fits one message, as the ratio.

    python3 bench/catch_up.py --keys 1000000 [--durable]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(api, method, path, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{api}{path}", data=data, method=method)
    if data:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["data"]


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(binary, name, directory, join=None, durable=False):
    port, api_port = free_port(), free_port()
    args = [binary, "agent", "--name", name, "--bind", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api_port}"]
    if join:
        args += ["--join", join]
    if durable:
        args += ["--data-dir", str(directory / name)]
    log = open(directory / f"{name}.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    api = f"127.0.0.1:{api_port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            call(api, "GET", "/v1/health", timeout=1)
            return process, api, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"agent {name} did not start: {(directory / f'{name}.log').read_text()[-2000:]}")


def load(api, keys, value_bytes, batch=20000):
    value = "v" * value_bytes
    for start_index in range(0, keys, batch):
        entries = [{"key": f"key/{i:09d}", "value": value} for i in range(start_index, min(keys, start_index + batch))]
        call(api, "POST", "/v1/kv/batch", {"entries": entries})


def measure(binary, keys, value_bytes, durable, timeout, directory):
    seed, seed_api, seed_address = start(binary, "seed", directory, durable=durable)
    joiner = None
    try:
        started = time.monotonic()
        load(seed_api, keys, value_bytes)
        loaded = time.monotonic() - started
        assert call(seed_api, "GET", "/v1/kv/status")["values"] == keys
        seed_rss = rss_mib(seed.pid)
        started = time.monotonic()
        joiner, joiner_api, _ = start(binary, "joiner", directory, join=seed_address, durable=durable)
        peak = 0.0
        while True:
            status = call(joiner_api, "GET", "/v1/kv/status")
            peak = max(peak, rss_mib(joiner.pid))
            if status["values"] >= keys:
                break
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the joiner holds {status['values']} of {keys} keys after {timeout} s; "
                                 f"log: {(directory / 'joiner.log').read_text()[-3000:]}")
            time.sleep(0.1)
        seconds = time.monotonic() - started
        log = (directory / "joiner.log").read_text()
        return {"keys": keys, "load_seconds": round(loaded, 2), "catch_up_seconds": round(seconds, 2),
                "keys_per_second": int(keys / seconds), "seed_rss_mib": round(seed_rss, 1),
                "joiner_rss_mib": round(max(peak, rss_mib(joiner.pid)), 1),
                "logged_catch_up": "caught up" in log or "catching up" in log}
    finally:
        for process in (joiner, seed):
            if process:
                process.kill()
                process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--durable", action="store_true", help="both agents with --data-dir")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--baseline-keys", type=int, default=0,
                        help="also measure a state this large (one that fits a message) for the ratio")
    parser.add_argument("--binary", default=os.environ.get("RUMOR_BIN", str(ROOT / ".build/release/rumor")))
    arguments = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="rumor-catch-up-"))
    try:
        result = measure(arguments.binary, arguments.keys, arguments.value_bytes, arguments.durable, arguments.timeout, directory)
        print(json.dumps(result))
        if arguments.baseline_keys:
            base = measure(arguments.binary, arguments.baseline_keys, arguments.value_bytes, arguments.durable,
                           arguments.timeout, directory)
            print(json.dumps({"baseline": base, "keys_per_second_ratio":
                              round(result["keys_per_second"] / max(1, base["keys_per_second"]), 2)}))
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(directory)


if __name__ == "__main__":
    sys.exit(main())
