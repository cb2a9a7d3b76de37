"""Instruction counts of marked windows of a child interpreter run under callgrind.

CPU time on a machine shared with other sessions moves by tens of percent from run to
run; the number of instructions a window executes does not (callgrind counts them on a
simulated CPU, whatever the load). A benchmark marks its windows with :func:`mark`
(a callgrind client request: a no-op at full speed outside valgrind) and runs itself
again as a child through :func:`run`, which returns the count of each window.

Python cannot issue a client request itself (it is a magic instruction sequence), so
:func:`mark` goes through a three-line C shim compiled once with the system's C
compiler against valgrind's ``callgrind.h``; without valgrind, the header or a compiler,
:func:`unavailable` says which is missing and the benchmark skips its counts.

callgrind's client-request dump writes every thread's counts since the previous dump
and zeroes them: with ``threads="all"`` (one profile for the process) a window is the
cost of all threads between two marks; with ``threads="main"``
(``--separate-threads=yes``) the dump covers only the thread that marks, so the window
is what that thread - the application's - executed. System-call time is not counted
(callgrind counts user-space instructions only).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_HEADER = Path("/usr/include/valgrind/callgrind.h")
_SHIM = b"""#include <valgrind/callgrind.h>
int co_running(void) { return RUNNING_ON_VALGRIND; }
void co_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""
#: Set in the child's environment by :func:`run`: only then is the shim loaded.
ENV = "COMMERCE_OBSERVE_BENCH_CALLGRIND"
_lib: ctypes.CDLL | None = None


def unavailable() -> str | None:
    """Why counts cannot be taken here (None: they can)."""
    if shutil.which("valgrind") is None:
        return "valgrind not installed"
    if not _HEADER.exists():
        return f"{_HEADER} missing (valgrind's development header)"
    if shutil.which("cc") is None:
        return "no C compiler (cc) for the client-request shim"
    return None


def prepare() -> Path:
    """The compiled shim, built once per header version into the temporary directory
    (call before starting children in parallel)."""
    digest = hashlib.sha256(_SHIM + _HEADER.read_bytes()).hexdigest()[:16]
    lib = Path(tempfile.gettempdir()) / f"commerce-observe-callgrind-{digest}.so"
    if not lib.exists():
        src = lib.with_suffix(".c")
        src.write_bytes(_SHIM)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
        os.close(fd)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", tmp, str(src)], check=True)
        os.replace(tmp, lib)
    return lib


def mark(label: str) -> None:
    """End the current window as ``label`` (counts since the previous mark); a no-op
    unless this process was started by :func:`run`."""
    global _lib
    if not os.environ.get(ENV):
        return
    if _lib is None:
        _lib = ctypes.CDLL(str(prepare()))
        if not _lib.co_running():
            raise RuntimeError(f"{ENV} is set but this process is not running under valgrind")
    _lib.co_dump(label.encode())


def run(argv: list[str], threads: str, out_dir: str) -> dict[str, int]:
    """Run ``python argv`` under callgrind; instructions per window label.

    ``threads``: ``"all"`` counts every thread of the process, ``"main"`` only the
    thread that calls :func:`mark` (the main thread). The child's stdout and stderr
    are kept in ``out_dir`` and its tail is raised when it fails.
    """
    prepare()  # compiled here, not inside the slow child
    prefix = os.path.join(out_dir, f"cg-{threads}")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p",
           f"--separate-threads={'yes' if threads == 'main' else 'no'}", sys.executable, *argv]
    log = os.path.join(out_dir, f"child-{threads}.log")
    with open(log, "wb") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, ENV: "1"})
    if done.returncode:
        tail = Path(log).read_text(errors="replace")[-4000:]
        raise RuntimeError(f"callgrind child exited {done.returncode}:\n{tail}")
    return _windows(out_dir, os.path.basename(prefix), threads)


def _windows(out_dir: str, stem: str, threads: str) -> dict[str, int]:
    """label -> instructions, from the dump files (``-01``: the main thread's, when separate)."""
    counts: dict[str, int] = {}
    for name in os.listdir(out_dir):
        if not name.startswith(stem + ".") or (threads == "main" and not name.endswith("-01")):
            continue
        label, total = None, None
        with open(os.path.join(out_dir, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("desc: Trigger: Client Request: "):
                    label = line.split(": ", 3)[3].strip()
                elif line.startswith("summary: "):
                    total = int(line.split()[1])
        if label is not None and total is not None:
            counts[label] = total
    return counts
