"""The README's first command: the tour runs every headline feature on the embedded defaults.

It runs ``commerce-observe tour`` as a user would (a subprocess, no server), then
checks what it printed against what it stored: the consumer's two crashes are one
LOST and one DUPLICATE, found by event id with their traces; the broken product page
is one anomaly alert that the tour's webhook received; the history went in through
``commerce-observe import``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def test_the_tour_finds_the_loss_the_duplicate_and_the_broken_product(tmp_path: Path) -> None:
    out = tmp_path / "tour"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_", "COMMERCE_OBSERVE_"))}
    done = subprocess.run([sys.executable, "-m", "commerce_observe", "tour", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    text = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr

    lost = [line for line in text.splitlines() if line.strip().startswith("LOST")]
    duplicate = [line for line in text.splitlines() if line.strip().startswith("DUPLICATE")]
    assert len(lost) == 1 and len(duplicate) == 1, text
    # the ids the watcher printed are those the one-shot auditor finds in the same trail
    audit = subprocess.run([sys.executable, "-m", "commerce_observe", "audit", "--sqlite", str(out / "audit.sqlite"),
                            "--as-of", "all", "--format", "json"], env=env, capture_output=True, text=True, check=False)
    found = {(f["kind"], f["event_id"]) for f in json.loads(audit.stdout)["findings"]}
    printed = {(line.split()[0], line.split("event ")[1].split()[0]) for line in lost + duplicate}
    assert printed == found
    assert "order ord-" in lost[0] and "trace " in lost[0] and "order ord-" in duplicate[0]

    received = [line for line in text.splitlines() if "webhook received" in line]
    anomalies = [line for line in received if "[firing]" in line and " - product " in line]
    assert anomalies == [next(line for line in received if "[firing] orders dropped - product sku-espresso" in line)], text
    assert any("[firing] events lost" in line for line in received) and any("[firing] events duplicated" in line for line in received)
    assert "commerce-observe import" in text and (out / "traces.json").stat().st_size > 0

    # the dashboard command it prints runs as printed, with the virtualenv's bin/ not on PATH
    dashboard = next(line.split() for line in text.splitlines() if " dashboard --store " in line)
    served = subprocess.run([*dashboard[:dashboard.index("dashboard")], "dashboard", "--help"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert served.returncode == 0 and "--store" in served.stdout, (dashboard, served.stderr)


def test_a_busy_dashboard_port_fails_the_tour_and_says_what_to_do(tmp_path: Path) -> None:
    """--serve on a port something else holds: exit status 1 or 2 and another port to try, not 0 after the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELASTIC_APM_", "COMMERCE_OBSERVE_"))}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "commerce_observe", "tour", "--out", str(tmp_path / "tour"),
                               "--orders", "3", "--serve", "--port", str(busy)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{busy}" in done.stderr and "Traceback" not in done.stderr
    assert "the dashboard did not start; another port: ./scripts/demo.sh --port N" in done.stdout
