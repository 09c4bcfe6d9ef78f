"""The soak, short: `bench/soak.py --seconds 180` (the documented run is an hour): 5 durable
agents with steady writes, deletes and TTLs; RSS and descriptors flat after the warm-up, no
error logs, identical state at the end, an idle-waiting `rumor watch` near 0 % CPU."""

import json
import os
import subprocess
import sys

from conftest import ROOT, rumor_binary


def test_soak_three_minutes():
    seconds = os.environ.get("RUMOR_SOAK_SECONDS", "180")
    result = subprocess.run([sys.executable, str(ROOT / "bench/soak.py"), "--seconds", seconds],
                            capture_output=True, text=True, timeout=float(seconds) + 240,
                            env=dict(os.environ, RUMOR_BIN=rumor_binary()))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["identical"] and not report["failures"], report
