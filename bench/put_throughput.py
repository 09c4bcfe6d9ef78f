#!/usr/bin/env python3
"""Durable put throughput of one agent (--data-dir, SQLite WAL, acknowledged after commit).

    python3 bench/put_throughput.py [--seconds 5] [--batch 1000] [--json FILE]

Measures single puts (one HTTP request and one transaction each) and batched puts
(POST /v1/kv/batch: one request, one transaction, one replication message per batch).
"""

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from common import Agent, Client


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--json")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="put-throughput-"))
    agent = Agent("solo", work, data_dir=work / "data")
    try:
        client = Client(agent.api)
        count = 0
        start = time.monotonic()
        while time.monotonic() - start < options.seconds:
            client.call("POST", "/v1/kv/put", {"key": f"single/{count}", "value": '{"n":%d}' % count})
            count += 1
        single = count / (time.monotonic() - start)

        # Two clients, so one builds its next batch while the agent commits the other's.
        counts = [0] * options.clients
        start = time.monotonic()

        def load(index):
            batch_client = Client(agent.api)
            while time.monotonic() - start < options.seconds:
                base = (index << 40) + counts[index]
                entries = [{"key": f"batch/{base + i}", "value": '{"n":%d}' % (base + i)} for i in range(options.batch)]
                batch_client.call("POST", "/v1/kv/batch", {"entries": entries})
                counts[index] += options.batch

        threads = [threading.Thread(target=load, args=(index,)) for index in range(options.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batched = sum(counts) / (time.monotonic() - start)
        status = client.call("GET", "/v1/kv/status")
        assert status["durable"], status
        assert status["values"] == count + sum(counts), (status["values"], count + sum(counts))
    finally:
        agent.stop()
    print(f"durable single puts:            {single:10.0f} puts/s")
    print(f"durable batched puts ({options.clients} clients x {options.batch}): {batched:10.0f} puts/s   (goal >= 20,000)")
    if options.json:
        Path(options.json).write_text(json.dumps({"single_puts_per_second": single, "batched_puts_per_second": batched,
                                                  "batch": options.batch}, indent=2) + "\n")


if __name__ == "__main__":
    main()
