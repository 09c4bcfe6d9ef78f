"""A local offline Pilot network for tests and benchmarks: N pilot-daemons and a rendezvous in a
loopback-only network namespace, through ../shared/pilot/pilot-net.sh (see its README). Adds
what the script lacks: kill -9 of one daemon and starting it again as it was. Needs root and
`pip install pilotprotocol==1.18.0`."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def script() -> Path:
    """pilot-net.sh: $RUMOR_PILOT_NET, else ../shared/pilot beside the repository, else /work/shared/pilot."""
    candidates = [os.environ.get("RUMOR_PILOT_NET"), ROOT.parent / "shared/pilot/pilot-net.sh",
                  Path("/work/shared/pilot/pilot-net.sh")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("pilot-net.sh not found: set RUMOR_PILOT_NET to ../shared/pilot/pilot-net.sh")


def daemon_binaries() -> Path:
    import pilotprotocol  # pip install pilotprotocol==1.18.0
    return Path(pilotprotocol.__file__).parent / "bin"


class PilotNet:
    def __init__(self, nodes: int, directory: Path | None = None):
        if os.geteuid() != 0:
            raise RuntimeError("a Pilot test network lives in a network namespace: run as root (CI does)")
        self.directory = Path(directory or tempfile.mkdtemp(prefix="rumor-pilot-"))
        self.nodes = nodes
        self.restarted: list[subprocess.Popen] = []
        result = subprocess.run([str(script()), "start", str(self.directory), str(nodes)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"pilot-net.sh start failed: {result.stderr}{result.stdout}")

    def socket(self, index: int) -> str:
        return str(self.directory / f"node-{index}.sock")

    def ctl(self, index: int, *args) -> dict:
        result = subprocess.run([str(script()), "ctl", str(self.directory), str(index), "--json", *args],
                                capture_output=True, text=True, timeout=30)
        return json.loads(result.stdout)

    def address(self, index: int) -> str:
        return self.ctl(index, "info")["data"]["address"]

    def daemon_pid(self, index: int) -> int | None:
        result = subprocess.run(["pgrep", "-f", f"pilot-daemon .*-socket {self.socket(index)}"],
                                capture_output=True, text=True)
        pids = [int(p) for p in result.stdout.split()]
        return pids[0] if pids else None

    def kill9(self, index: int):
        pid = self.daemon_pid(index)
        assert pid, f"no daemon runs for node-{index}"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.daemon_pid(index) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, index: int):
        """Starts node I's daemon again, with the arguments pilot-net.sh gave it (same identity,
        so the same address and trust)."""
        sock = Path(self.socket(index))
        sock.unlink(missing_ok=True)  # a kill -9 leaves it behind
        ns = (self.directory / "ns.pid").read_text().strip()
        home = self.directory / f"home-{index}"
        args = ["nsenter", "-t", ns, "-n", str(daemon_binaries() / "pilot-daemon"),
                "-registry", "127.0.0.1:9000", "-beacon", "127.0.0.1:9001", "-listen", "127.0.0.1:0",
                "-socket", str(sock), "-identity", str(home / "identity.json"), "-hostname", f"node-{index}",
                "-email", f"node-{index}@example.test", "-trust-auto-approve", "-telemetry-url", "",
                "-motd-feed-url", "", "-no-skillinject", "-proxy", "off", "-transport", "udp"]
        log = open(self.directory / f"node-{index}.restart.log", "ab")
        self.restarted.append(subprocess.Popen(args, env=dict(os.environ, HOME=str(home)), stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True))
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"node-{index}'s daemon did not come back")
            time.sleep(0.05)

    def stop(self):
        """Kills every daemon and the rendezvous at once (pilot-net.sh stop leaves them ~6 s to exit)."""
        pids = self.directory / "pids"
        if pids.exists():
            for line in pids.read_text().split():
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for process in self.restarted:
            process.kill()
            process.wait(timeout=10)
        subprocess.run([str(script()), "stop", str(self.directory)], capture_output=True, timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)
