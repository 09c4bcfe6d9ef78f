"""The network-namespace fault-injection suite, bounded (about 2.5 minutes): 5 agents on a
bridge under loss, partitions, kill -9/restart and SIGSTOP, with a workload and a checker.
Needs root (CI runs as root); tests/faults/run_faults.py --duration 600 is the 10-minute run."""

import json
import os
import subprocess
import sys

from conftest import ROOT, rumor_binary


def test_fault_injection_suite_loses_nothing_and_converges():
    assert os.geteuid() == 0, "the fault suite creates network namespaces: run the tests as root (CI does)"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests/faults/run_faults.py"), "--duration", "150", "--binary", rumor_binary()],
        capture_output=True, text=True, timeout=900)
    print(result.stdout[-3000:])
    assert result.returncode == 0, f"fault suite failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["lost_acknowledged_writes"] == 0 and summary["resurrected_deletes"] == 0
    assert summary["convergence_seconds_after_heal"] <= 10
    assert summary["false_deaths_under_10pct_loss_or_pause"] == 0
    assert summary["sockets_off_the_gossip_port"] == [], "an agent's gossip socket moved off its port"
    print(f"MEASURE fault_convergence_after_heal={summary['convergence_seconds_after_heal']:.3f}s")
