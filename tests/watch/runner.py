"""``commerce-observe watch`` as a separate process, the way an operator runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from tests.support.waiting import wait_for


class WatchProcess:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        self.proc = subprocess.Popen([sys.executable, "-m", "commerce_observe", "watch", "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = wait_for("the watch to serve /metrics", lambda: next((x for x in self.lines if "metrics on" in x), None)
                        or self._dead(), timeout=60)
        assert line is not None  # wait_for returns a truthy answer
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert m, f"watch did not start: {self.stderr}"
        self.port = int(m.group(1))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def _dead(self) -> str | None:
        if self.proc.poll() is not None:
            self._reader.join(5)
            return f"exited {self.proc.returncode}"
        return None

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def metrics(self) -> dict[str, float]:
        """The /metrics samples as {name{labels}: value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def health(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as resp:
            return int(resp.status)

    def wait_metric(self, name: str, at_least: float, timeout: float = 60) -> dict[str, float]:
        def probe() -> dict[str, float] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"watch exited {self.proc.returncode}: {self.stderr}")
            m = self.metrics()
            return m if m.get(name, 0) >= at_least else None
        found = wait_for(f"{name} >= {at_least}", probe, timeout=timeout,
                         describe=lambda _: f"{self.metrics()}; {self.stderr}".replace("\n", " | "))
        assert found is not None  # wait_for returns a truthy answer
        return found

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self._reader.join(5)
        return code


def run_backtest(*args: str) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-m", "commerce_observe", "watch", "--no-http", *args],
                          capture_output=True, env=env, timeout=120)
    return proc.returncode, proc.stderr.decode()


def rule_file(path: str, webhook: str, smtp_port: int | None = None) -> str:
    """One rule per injected fault: a product selling far above normal, and a lost event."""
    notifiers: list[dict[str, Any]] = [{"type": "webhook", "url": webhook}]
    if smtp_port is not None:
        notifiers.append({"type": "email", "host": "127.0.0.1", "port": smtp_port, "from": "watch@shop.test",
                          "to": ["oncall@shop.test"]})
    doc = {"bucket_seconds": 60, "rules": [
        {"type": "anomaly", "name": "product-spike", "series": "orders:sku-*", "threshold": 75, "direction": "spike"},
        {"type": "audit", "name": "lost-events", "kinds": ["LOST"]},
    ], "notifiers": notifiers, "throttle": {"max": None}, "retry": {"max_attempts": 3, "base_seconds": 0.2}}
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return path


def firing(bodies: list[dict[str, Any]]) -> dict[str, int]:
    """Firing alerts per rule, over the distinct notifications received (a receiver drops a
    redelivery by its id: see :func:`assert_no_repeat` for how many there may be)."""
    out: dict[str, int] = {}
    for b in {str(b["id"]): b for b in bodies}.values():
        for a in b["alerts"]:
            if a["status"] == "firing":
                out[a["rule"]] = out.get(a["rule"], 0) + 1
    return out


def assert_no_repeat(bodies: list[dict[str, Any]], killed: bool) -> None:
    """No notification twice, except the one in flight when the watch was killed.

    Delivery is at least once: killed between the receiver's answer and the write to
    the notification log, the watch cannot know the notification arrived and sends it
    again after the restart, with the same id for the receiver to drop (docs/alerts.md).
    The tests kill right after an alert arrived, in that window on purpose."""
    ids = [str(b["id"]) for b in bodies]
    repeats = len(ids) - len(set(ids))
    assert repeats <= (1 if killed else 0), f"notifications sent again: {ids}"
