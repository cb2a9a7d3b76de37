"""``commerce-observe audit``: exit codes gate a deploy; findings carry ids and links."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from commerce_observe.agent.audit.sinks import SqliteSink
from commerce_observe.monitor.audit.synth import generate
from commerce_observe.monitor.cli import main


def _file(tmp_path: Path, lines: list[bytes]) -> str:
    path = tmp_path / "audit.lines"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


def test_clean_history_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, _ = generate(2000)
    assert main(["audit", "--file", _file(tmp_path, lines), "--grace", "5s"]) == 0
    assert "nothing lost" in capsys.readouterr().out


def test_findings_exit_1_with_ids_and_links_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, expected = generate(3000, fault_rate=0.02, seed=11)
    sink = SqliteSink(str(tmp_path / "a.sqlite"))
    sink.write(lines)
    sink.close()
    code = main(["audit", "--sqlite", str(tmp_path / "a.sqlite"), "--grace", "5s", "--format", "json",
                 "--zipkin-url", "http://zipkin:9411", "--kibana-url", "http://kibana:5601/"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    lost = {(f["event_id"], f["consumer_group"]) for f in report["findings"] if f["kind"] == "LOST"}
    assert lost == expected.faults["lost"]
    f = next(f for f in report["findings"] if f["kind"] == "LOST")
    assert f["links"] == {"zipkin": f"http://zipkin:9411/zipkin/traces/{f['trace_id']}",
                          "kibana": f"http://kibana:5601/app/apm/link-to/trace/{f['trace_id']}"}
    dup = next(f for f in report["findings"] if f["kind"] == "DUPLICATE")
    assert len(dup["handlings"]) == 2 and dup["handlings"][0]["span_id"] != dup["handlings"][1]["span_id"]
    assert report["summary"]["findings"]["LOST"] == len(expected.faults["lost"])


def test_group_selection_and_from_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, expected = generate(3000, fault_rate=0.02, seed=11)
    path = _file(tmp_path, lines)
    assert main(["audit", "--file", path, "--grace", "5s", "--format", "json", "--group", "ledger"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {f.get("consumer_group") for f in report["findings"] if f["kind"] in ("LOST", "DUPLICATE", "LATE")} == {"ledger"}
    assert main(["audit", "--file", path, "--from-time", "2099-01-01T00:00Z"]) == 0


@pytest.mark.parametrize("argv", [
    ["audit"],
    ["audit", "--file", "/nonexistent/file"],
    ["audit", "--sqlite", "/nonexistent/x.sqlite"],
    ["audit", "--file", "x", "--sqlite", "y"],
])
def test_usage_and_input_errors_exit_2(argv: list[str]) -> None:
    assert main(argv) == 2


def test_bad_option_exits_2_via_the_console_entry() -> None:
    proc = subprocess.run([sys.executable, "-m", "commerce_observe", "audit", "--grace", "soon", "--file", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not a duration" in proc.stderr


def test_findings_reach_the_dashboard_store_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from commerce_observe.store import TimeRange, open_store

    lines, expected = generate(3000, fault_rate=0.02, seed=11)
    source = _file(tmp_path, lines)
    spec = f"sqlite:{tmp_path / 'monitoring.db'}"
    reports = []
    for _ in range(2):  # a re-run must not count the same finding twice
        assert main(["audit", "--file", source, "--grace", "5s", "--format", "json", "--store", spec]) == 1
        reports.append(json.loads(capsys.readouterr().out))
    store = open_store(spec)
    try:
        counts = {row.key: row.count for row in store.finding_counts(TimeRange.last(10**7))}  # type: ignore[attr-defined]
    finally:
        store.close()
    assert counts.get("LOST") == len(expected.faults["lost"])
    assert reports[0]["summary"]["findings"] == reports[1]["summary"]["findings"]
    assert counts["LOST"] == reports[0]["summary"]["findings"]["LOST"]


def test_duplicate_and_late_show_order_and_payment_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Consumers' records hold no order or payment id; the findings get the producer's."""
    from commerce_observe.store import finding_document
    from commerce_observe.monitor.alerts.inputs import finding_from_dict

    lines, expected = generate(3000, fault_rate=0.02, seed=11)
    path = _file(tmp_path, lines)
    assert main(["audit", "--file", path, "--grace", "5s", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    chosen = [f for f in report["findings"] if f["kind"] in ("DUPLICATE", "LATE")]
    assert {(f["event_id"], f["consumer_group"]) for f in chosen if f["kind"] == "LATE"} == expected.faults["late"]
    assert chosen and all(f.get("order_id", "").startswith("ord-") or f.get("payment_id", "").startswith("pay-")
                          for f in chosen)
    for f in chosen:
        doc = finding_document(finding_from_dict(f))
        assert doc.get("commerce.order.id") == f.get("order_id") and doc.get("commerce.payment.id") == f.get("payment_id")
    assert main(["audit", "--file", path, "--grace", "5s", "--limit", "100000"]) == 1
    table = capsys.readouterr().out
    for f in chosen:
        row = next(line for line in table.splitlines() if line.startswith(f["kind"]) and f["event_id"] in line
                   and f["consumer_group"] in line)
        assert (f.get("order_id") or f["payment_id"]) in row
