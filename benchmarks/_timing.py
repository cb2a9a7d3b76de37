"""Helpers the benchmarks share: per-call timing and fresh-interpreter runs."""

from __future__ import annotations

import json
import subprocess
import sys
import timeit
from collections.abc import Callable
from typing import Any


def per_call_us(fn: Callable[[], object], number: int = 20_000) -> float:
    """Microseconds per call of ``fn``: the best of 9 repeats of ``number`` calls."""
    return min(timeit.Timer(fn).repeat(repeat=9, number=number)) / number * 1e6


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` with ``args`` in a fresh interpreter; the JSON object on the last
    line it printed. A failing child raises with the end of its stderr."""
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{script} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
