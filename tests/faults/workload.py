"""One workload client, run inside a host namespace against its local agent: random puts and
deletes over a small key space; every answered operation is appended to a JSON-lines log with
the version the agent gave it ("acked"), every unanswered one as "unknown" (it may or may not
have been applied). Stops on SIGTERM."""

import json
import random
import signal
import sys
import time
import urllib.error
import urllib.request

api, client, out_path, keys, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
rng = random.Random(seed)
out = open(out_path, "a", buffering=1)
sequence = 0
while not stopping:
    sequence += 1
    key = f"key{rng.randrange(keys)}"
    delete = rng.random() < 0.2
    value = None if delete else f"{client}-{sequence}"
    path, body = ("/v1/kv/delete", {"key": key}) if delete else ("/v1/kv/put", {"key": key, "value": value})
    record = {"client": client, "seq": sequence, "key": key, "op": "delete" if delete else "put", "value": value,
              "sent": time.time()}
    request = urllib.request.Request(f"http://{api}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            data = json.load(response)["data"]
        record.update(status="acked", timestamp=data["timestamp"], origin=data["origin"])
    except urllib.error.HTTPError as error:
        # A node whose clock is fenced refuses before writing anything (clock_skew, HTTP 503).
        try:
            code = json.load(error).get("code")
        except ValueError:
            code = None
        record.update(status="rejected" if error.code < 500 or code == "clock_skew" else "unknown", error=error.code, code=code)
    except OSError as error:
        # Connection refused means it never reached the agent; a timeout may have been applied.
        refused = isinstance(getattr(error, "reason", None), ConnectionRefusedError)
        record.update(status="failed" if refused else "unknown", error=str(error))
        time.sleep(0.2)
    out.write(json.dumps(record) + "\n")
    time.sleep(0.01)
