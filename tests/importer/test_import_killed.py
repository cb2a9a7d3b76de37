"""An import killed (SIGKILL) in the middle of a file leaves the store consistent, and running it
again counts every row once.

The payments CSV comes through a named pipe, so the kill lands mid-file by construction, not by
timing: the test writes a batch and a half, waits until the store holds the first batch, and
kills the import while it waits for the rest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from commerce_observe.monitor.importer.job import Options
from tests.importer.files import run, write
from tests.support.waiting import wait_for

HEADER = "timestamp,method,attempts,failures,declined,fraud_suspected"
METHODS = ("card", "paypal", "sepa")
BATCH = Options().batch
H0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
IMPORT = """import sys
from commerce_observe.monitor.importer.job import Options, import_file
from commerce_observe.store.sqlite_store import SqliteStore
import_file(SqliteStore(sys.argv[1]), sys.argv[2], Options(bucket_s=3600), sys.stderr)
"""


def rows(n: int) -> list[str]:
    out = []
    for i in range(n):
        hour, m = divmod(i, len(METHODS))
        attempts = 20 + i % 50
        at = (H0 + timedelta(hours=hour)).isoformat()
        out.append(f"{at},{METHODS[m]},{attempts},{attempts // 10},{attempts // 20},{'' if i % 3 else 1}")
    return out


def expected(lines: list[str]) -> tuple[dict[str, tuple[int, int]], Counter[str]]:
    """Per method (attempts, failures), and failures per reason ("" for those without one)."""
    methods: dict[str, tuple[int, int]] = {}
    reasons: Counter[str] = Counter()
    for line in lines:
        _, method, a, f, declined, fraud = line.split(",")
        methods[method] = (methods.get(method, (0, 0))[0] + int(a), methods.get(method, (0, 0))[1] + int(f))
        explained = int(declined or 0) + int(fraud or 0)
        reasons.update({"declined": int(declined or 0), "fraud_suspected": int(fraud or 0), "": int(f) - explained})
    return methods, +reasons


def stored(db: Path) -> tuple[int, dict[str, tuple[int, int]], Counter[str]]:
    """Payment buckets in the store, and what its hourly rollups count (per method; per reason)."""
    conn = sqlite3.connect(db)
    try:
        buckets = conn.execute("SELECT count(*) FROM payment_buckets").fetchone()[0]
        methods: dict[str, list[int]] = {}
        reasons: Counter[str] = Counter()
        for action, method, reason, n in conn.execute("SELECT action, method, reason, sum(n) FROM hour_rollup "
                                                      "GROUP BY action, method, reason"):
            total = methods.setdefault(method, [0, 0])
            total[0] += n
            if action == "payment.failed":
                total[1] += n
                reasons[reason] += n
        return buckets, {m: (a, f) for m, (a, f) in methods.items()}, +reasons
    finally:
        conn.close()


def buckets_so_far(db: Path) -> int:
    try:
        return stored(db)[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_payments_import_killed_mid_file_then_again_counts_every_row_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = rows(BATCH * 2)
    fifo, db = tmp_path / "payments.csv", tmp_path / "m.db"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    # the command's import_file (the command line itself refuses a pipe: it checks the file is text first)
    proc = subprocess.Popen([sys.executable, "-c", IMPORT, str(db), str(fifo)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    first = "\n".join([HEADER, *lines[:BATCH + BATCH // 2]]) + "\n"
    killed = threading.Event()
    feeder = threading.Thread(target=_feed, args=(fifo, first, killed), daemon=True)
    feeder.start()
    try:
        wait_for("the first batch stored", lambda: buckets_so_far(db) >= BATCH or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
        killed.set()
        feeder.join(5)

    # consistent: the rollups count exactly the buckets stored (whole batches), nothing half-applied
    buckets, methods, reasons = stored(db)
    assert buckets == BATCH
    assert (methods, reasons) == expected(lines[:BATCH])

    # the whole file again: what was stored counts once, the rest is added
    whole = write(tmp_path / "all.csv", HEADER, lines)
    code, out = run(capsys, "--store", f"sqlite:{db}", whole)
    assert code == 0, out
    assert f"{BATCH:,} rows" not in out[0] and "already there" in out[0]
    assert stored(db)[1:] == expected(lines)


def _feed(fifo: Path, text: str, killed: threading.Event) -> None:
    """Write ``text`` into the pipe and hold it open (no end of file: the import waits for more)."""
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
        killed.wait(120)
    finally:
        os.close(fd)
