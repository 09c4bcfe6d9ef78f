"""`rumor sim` on the release binary: the 100k-node bound, determinism, and its outputs."""

import json
import re
import subprocess
import time

from conftest import measure, rumor_binary


def sim(*args):
    result = subprocess.run([rumor_binary(), "sim", "--quiet", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_hundred_thousand_nodes_twenty_rounds_within_60s_all_informed_within_8_rounds():
    start = time.monotonic()
    result = sim("--nodes", "100000", "--rounds", "20", "--updates", "3", "--json")
    took = time.monotonic() - start
    measure("sim_100k_nodes_20_rounds_wall", took)
    envelope = json.loads(result.stdout)
    assert envelope["status"] == "ok", envelope
    report = envelope["data"]
    assert took <= 60, f"100k nodes × 20 rounds took {took:.1f} s"
    for update in report["updates"]:
        assert update["roundsTo100"] is not None and update["roundsTo100"] <= 8, update
        assert update["copiesPerNode"] <= 2.3, update
    print("100k:", [(u["roundsTo99"], u["roundsTo100"], round(u["copiesPerNode"], 2)) for u in report["updates"]])


def test_same_seed_same_output_and_files(tmp_path):
    args = ["--nodes", "2000", "--loss", "10%", "--updates", "4", "--seed", "42"]
    first = sim(*args, "--csv", str(tmp_path / "a.csv"), "--svg", str(tmp_path / "a.svg"))
    second = sim(*args, "--csv", str(tmp_path / "b.csv"), "--svg", str(tmp_path / "b.svg"))
    assert first.stdout == second.stdout, "same seed, different report"
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert (tmp_path / "a.svg").read_text() == (tmp_path / "b.svg").read_text()
    assert (tmp_path / "a.svg").read_text().startswith("<svg")
    assert re.search(r"simulated in [0-9.]+ s wall", first.stderr)
    assert sim(*args[:-1], "43").stdout != first.stdout


def test_bad_sim_arguments_are_clear_errors():
    result = subprocess.run([rumor_binary(), "sim", "--nodes", "1", "--json"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 64 and json.loads(result.stderr)["code"] == "bad_arguments"


def test_regions_jitter_asymmetry_report_the_physical_limit():
    args = ["--nodes", "300", "--regions", "3", "--jitter", "50%", "--asymmetry", "20%", "--updates", "3", "--rounds", "4",
            "--json"]
    first = sim(*args)
    assert sim(*args).stdout == first.stdout, "same seed, different report"
    report = json.loads(first.stdout)["data"]
    assert report["configuration"]["regionLatencyMicroseconds"] == [[5000, 40000, 150000], [40000, 5000, 80000],
                                                                     [150000, 80000, 5000]]
    limit = report["physicalLimit"]
    assert limit["exact"] and limit["ratioToLimit"] >= 1, limit
    for update in report["updates"]:
        assert update["millisecondsTo100"] >= update["limitMilliseconds"], update
    # The old pair of flags still means a base and an absolute tail; --jitter 50% on the same base is the same tail.
    old = sim("--nodes", "200", "--latency-min-us", "20000", "--latency-tail-us", "10000", "--updates", "2", "--rounds", "3")
    new = sim("--nodes", "200", "--latency-min-us", "20000", "--jitter", "50%", "--updates", "2", "--rounds", "3")
    assert old.stdout.split("\n", 2)[2] == new.stdout.split("\n", 2)[2], "same draws, same figures"


def test_contradicting_latency_flags_are_refused():
    for args in (["--regions", "2"], ["--regions", "3", "--latency-min-us", "100"], ["--jitter", "50%", "--latency-tail-us", "9"],
                 ["--region-latency-ms", "5,A-B=40,A-C=150"]):
        result = subprocess.run([rumor_binary(), "sim", "--nodes", "10", *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 64, (args, result.stderr)
