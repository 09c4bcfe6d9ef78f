"""Verifies a fault run: every acknowledged write survives (the final value of each key is its
last acknowledged write by hybrid-clock order, or a later one), no acknowledged delete is
undone, and nothing appears that no client wrote."""

import json
from collections import defaultdict


def version(timestamp: str, origin: str):
    milliseconds, logical = timestamp.split(".")
    return (int(milliseconds), int(logical), origin)


def load(paths):
    records = []
    for path in paths:
        with open(path) as handle:
            records += [json.loads(line) for line in handle if line.strip()]
    return records


def check(records, final: dict):
    """`final`: key -> {"value", "timestamp", "origin"} of live entries on every node."""
    by_key = defaultdict(list)
    for record in records:
        by_key[record["key"]].append(record)
    lost, resurrected, phantom = [], [], []
    for key, operations in by_key.items():
        acked = [op for op in operations if op["status"] == "acked"]
        last = max(acked, key=lambda op: version(op["timestamp"], op["origin"]), default=None)
        entry = final.get(key)
        if entry is None:
            if last and last["op"] == "put":
                later_delete = any(op["op"] == "delete" and op["status"] == "unknown" for op in operations)
                if not later_delete:
                    lost.append((key, last))
            continue
        written = {op["value"]: op for op in operations if op["op"] == "put" and op["status"] in ("acked", "unknown")}
        source = written.get(entry["value"])
        if source is None:
            phantom.append((key, entry))
            continue
        current = version(entry["timestamp"], entry["origin"])
        if source["status"] == "acked" and version(source["timestamp"], source["origin"]) != current:
            phantom.append((key, entry))
        if last and current < version(last["timestamp"], last["origin"]):
            (resurrected if last["op"] == "delete" else lost).append((key, last))
    for key in final:
        if key not in by_key:
            phantom.append((key, final[key]))
    return {"lost": lost, "resurrected": resurrected, "phantom": phantom}
