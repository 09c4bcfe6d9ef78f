#!/usr/bin/env python3
"""The CLI as agents use it, against Serf's, measured side by side in one run.

Starts one Rumor agent and one Serf 0.8.2 agent (built from Debian's Go source) on loopback, then:
- start-to-exit time of `rumor get`, `rumor put`, `rumor members` and `serf members`, run
  interleaved so that both see the same machine (median and p90 over --runs each);
- each idle agent's RSS and PSS (from /proc/PID/smaps_rollup) after --settle seconds;
- the CPU an idle `rumor watch` uses over --idle seconds (from /proc/PID/stat), next to an idle
  `serf monitor`.

Prints a table with the Rumor/Serf ratio of each pair, and exits 1 when a target of the issue is
missed (--check): CLI median <= 5 ms and <= 1.5x `serf members`; idle watch <= 0.5 % CPU; idle
agent RSS <= 20 MB.

    python3 bench/cli_latency.py            # the full run (the figures in docs/performance.md)
    python3 bench/cli_latency.py --runs 40 --idle 3 --check   # what CI runs
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, rumor_binary  # noqa: E402
from serf_compare import build_serf  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_kib(pid):
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            values[parts[0][:-1]] = int(parts[1])
    return values["Rss"], values["Pss"]


def timed(command):
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    return elapsed


def wait_for(predicate, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def idle_cpu_percent(command, seconds):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # connected and waiting
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(command)} exited early with {process.returncode}")
        before = cpu_seconds(process.pid)
        time.sleep(seconds)
        return (cpu_seconds(process.pid) - before) / seconds * 100
    finally:
        process.kill()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="invocations of each command")
    parser.add_argument("--idle", type=float, default=10, help="seconds an idle watch is measured")
    parser.add_argument("--settle", type=float, default=11,
                        help="idle seconds before measuring agent memory (the agent trims every 10 s)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    options = parser.parse_args()

    rumor = rumor_binary()
    serf = build_serf()
    work = tempfile.mkdtemp(prefix="cli-latency-")
    rumor_api = f"127.0.0.1:{free_port()}"
    serf_rpc = f"127.0.0.1:{free_port()}"
    agents = [
        subprocess.Popen([rumor, "agent", "--name", "r1", "--bind", f"127.0.0.1:{free_port()}", "--api", rumor_api],
                         stdout=open(f"{work}/rumor.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen([serf, "agent", "-node=s1", f"-bind=127.0.0.1:{free_port()}", f"-rpc-addr={serf_rpc}",
                          "-log-level=err"], stdout=open(f"{work}/serf.log", "w"), stderr=subprocess.STDOUT),
    ]
    try:
        env_api = ["--api", rumor_api]
        wait_for(lambda: subprocess.run([rumor, "info", *env_api], capture_output=True).returncode == 0, "the Rumor agent")
        wait_for(lambda: subprocess.run([serf, "members", f"-rpc-addr={serf_rpc}"], capture_output=True).returncode == 0,
                 "the Serf agent")
        subprocess.run([rumor, "put", "bench", "value", *env_api], check=True, capture_output=True)

        commands = {
            "rumor get": [rumor, "get", "bench", *env_api],
            "rumor put": [rumor, "put", "bench", "value", *env_api],
            "rumor members": [rumor, "members", *env_api],
            "serf members": [serf, "members", f"-rpc-addr={serf_rpc}"],
        }
        times = {name: [] for name in commands}
        for _ in range(options.runs):
            for name, command in commands.items():
                times[name].append(timed(command))

        time.sleep(options.settle)
        # The highest of five samples over 2 s, so a measurement right after a trim does not flatter.
        samples = []
        for _ in range(5):
            samples.append((memory_kib(agents[0].pid), memory_kib(agents[1].pid)))
            time.sleep(0.5)
        rumor_rss = max(s[0][0] for s in samples)
        rumor_pss = max(s[0][1] for s in samples)
        serf_rss = max(s[1][0] for s in samples)
        serf_pss = max(s[1][1] for s in samples)
        watch_cpu = idle_cpu_percent([rumor, "watch", *env_api], options.idle)
        monitor_cpu = idle_cpu_percent([serf, "monitor", f"-rpc-addr={serf_rpc}", "-log-level=err"], options.idle)
    finally:
        for agent in agents:
            agent.kill()
            agent.wait()

    serf_median = statistics.median(times["serf members"])
    print(f"CLI start to exit, {options.runs} runs each, interleaved (ms)")
    print(f"{'command':<16}{'median':>9}{'p90':>9}{'vs serf members':>18}")
    for name, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{name:<16}{median:>9.2f}{p90:>9.2f}{median / serf_median:>17.2f}x")
    print()
    print(f"idle agent memory after {options.settle:.0f} s (MiB)")
    print(f"{'agent':<16}{'RSS':>9}{'PSS':>9}")
    print(f"{'rumor agent':<16}{rumor_rss / 1024:>9.1f}{rumor_pss / 1024:>9.1f}")
    print(f"{'serf agent':<16}{serf_rss / 1024:>9.1f}{serf_pss / 1024:>9.1f}")
    print(f"{'ratio':<16}{rumor_rss / serf_rss:>8.2f}x{rumor_pss / serf_pss:>8.2f}x")
    print()
    print(f"idle long-running client, CPU over {options.idle:.0f} s")
    print(f"  rumor watch    {watch_cpu:.2f} %")
    print(f"  serf monitor   {monitor_cpu:.2f} %")

    if options.check:
        failures = []
        for name in ("rumor get", "rumor put"):
            median = statistics.median(times[name])
            if median > 5 and median > 1.5 * serf_median:
                failures.append(f"{name} median {median:.2f} ms (target <= 5 ms, or <= 1.5x serf members {serf_median:.2f} ms)")
        if watch_cpu > 0.5:
            failures.append(f"idle rumor watch uses {watch_cpu:.2f} % CPU (target <= 0.5 %)")
        if rumor_rss > 20 * 1024:
            failures.append(f"idle rumor agent RSS {rumor_rss / 1024:.1f} MiB (target <= 20 MB)")
        if failures:
            print("\nMISSED:\n  " + "\n  ".join(failures))
            sys.exit(1)


if __name__ == "__main__":
    main()
