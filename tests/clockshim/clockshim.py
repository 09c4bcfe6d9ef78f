"""Builds the clock shim (clockshim.c) into a shared library for LD_PRELOAD: it shifts a
process's wall clock (CLOCK_REALTIME, gettimeofday, time) by the milliseconds written in the file
its environment names in RUMOR_CLOCK_OFFSET_FILE, re-read while it runs. The e2e clock tests
(tests/e2e/test_clocks.py) and the namespace fault suite (tests/faults) preload it."""

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "clockshim.c"


def build(directory: Path) -> str:
    """Compiles the shim into `directory`; returns the library's path. Raises RuntimeError with
    what to install when there is no C compiler or the build fails."""
    compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler (cc, clang or gcc) to build the clock shim: apt-get install gcc libc6-dev")
    out = Path(directory) / "clockshim.so"
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(out), str(SOURCE), "-ldl"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the clock shim with {compiler} failed:\n{result.stderr}")
    return str(out)


def set_offset(path: Path, milliseconds: int):
    """Steps the clock of every process reading `path` to `milliseconds` off (written whole: the
    shim never reads half a number)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{int(milliseconds)}\n")
    temporary.replace(path)
