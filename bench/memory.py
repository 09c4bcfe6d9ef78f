#!/usr/bin/env python3
"""Memory per key: one agent loaded with N keys of 100-byte values, its RSS after the load (and,
with --data-dir, after a restart from disk), against an empty agent's, in both modes.

    python3 bench/memory.py [--keys 1000000]

Prints one JSON line per mode with the RSS figures and the bytes per key above the empty agent.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from catch_up import call, load, rss_mib, start

ROOT = Path(__file__).resolve().parents[1]


def measure(binary, keys, durable, work):
    process, api, _ = start(binary, "a", work, durable=durable)
    empty = rss_mib(process.pid)
    load(api, keys, 100)
    time.sleep(12)  # past one of the agent's 10 s memory trims
    result = {"keys": keys, "mode": "data-dir" if durable else "memory", "empty_rss_mib": round(empty, 1),
              "loaded_rss_mib": round(rss_mib(process.pid), 1)}
    if durable:
        process.terminate()
        process.wait()
        process, api, _ = start(binary, "a", work, durable=True)
        assert call(api, "GET", "/v1/kv/status")["values"] == keys
        time.sleep(1)
        result["restarted_rss_mib"] = round(rss_mib(process.pid), 1)
    process.kill()
    process.wait()
    held = result.get("restarted_rss_mib", result["loaded_rss_mib"])
    result["bytes_per_key"] = int((held - empty) * 1024 * 1024 / keys)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/rumor"))
    options = parser.parse_args()
    for durable in (True, False):
        work = Path(tempfile.mkdtemp(prefix="rumor-memory-"))
        try:
            print(json.dumps(measure(options.binary, options.keys, durable, work)), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
