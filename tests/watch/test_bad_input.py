"""Bad input: one clear line on stderr naming what is wrong, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_observe.monitor.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["watch", "--no-http", *args])
    err = capsys.readouterr().err
    return code, [x for x in err.splitlines() if x]


def test_malformed_rule_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"type": "anomaly", "name": "x", "threshold": 300}]}')
    code, lines = _run(capsys, "--rules", str(rules), "--store", f"sqlite:{tmp_path / 's.db'}", "--state", str(tmp_path / "st"))
    assert code == 2 and len(lines) == 1
    assert "rules[0].threshold" in lines[0] and "Traceback" not in lines[0]


def test_rule_file_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("{nope")
    code, lines = _run(capsys, "--rules", str(rules), "--store", f"sqlite:{tmp_path / 's.db'}")
    assert code == 2 and len(lines) == 1 and "not valid JSON" in lines[0]


def test_unreachable_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(capsys, "--store", f"sqlite:{tmp_path / 'missing-dir' / 's.db'}", "--state", str(tmp_path / "st"))
    assert code == 2 and len(lines) == 1 and "cannot open" in lines[0]


def test_unknown_from_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(capsys, "--store", f"sqlite:{tmp_path / 's.db'}", "--from", "last tuesday", "--until", "2h")
    assert code == 2 and len(lines) == 1 and "--from" in lines[0] and "last tuesday" in lines[0] and lines[0].startswith("commerce-observe watch")


def test_bucket_not_whole_minutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(capsys, "--store", f"sqlite:{tmp_path / 's.db'}", "--bucket", "90s")
    assert code == 2 and len(lines) == 1 and "whole number of minutes" in lines[0]


def test_unreachable_kafka(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from testbed.base import free_port

    code, lines = _run(capsys, "--store", f"sqlite:{tmp_path / 's.db'}", "--state", str(tmp_path / "st"),
                       "--bootstrap", f"127.0.0.1:{free_port()}")
    assert code == 2 and len(lines) == 1 and "unreachable" in lines[0], lines


@pytest.mark.parametrize("flags", [("--bootstrap", "127.0.0.1:{port}"), ("--elasticsearch", "http://127.0.0.1:{port}")])
def test_scale_out_without_both_servers_says_so_before_trying_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, str]) -> None:
    from testbed.base import free_port

    code, lines = _run(capsys, "--state", str(tmp_path / "st"), "--scale-out", flags[0], flags[1].format(port=free_port()))
    assert code == 2 and lines == ["commerce-observe watch: --scale-out needs --bootstrap and --elasticsearch"], lines


def test_unreachable_elasticsearch_is_one_short_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from testbed.base import free_port

    code, lines = _run(capsys, "--state", str(tmp_path / "st"), "--elasticsearch", f"http://u:pw@127.0.0.1:{free_port()}")
    assert code == 2 and len(lines) == 1 and "Elasticsearch unreachable: ConnectionError" in lines[0], lines
    assert "pw" not in lines[0] and lines[0].count("Connection refused") == 1, lines
