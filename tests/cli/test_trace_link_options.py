"""Every command that shows findings takes the trace-link options under one pair of names
(``--zipkin-url``, ``--kibana-url``) and the older spellings of ``watch`` and ``alerts
evaluate`` (``--zipkin-ui``, ``--kibana``), into the same setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_observe.monitor.cli import build_parser

COMMANDS = [["audit", "--file", "a.jsonl"], ["dashboard"], ["watch"], ["alerts", "evaluate", "--config", "c.json"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("zipkin, kibana", [("--zipkin-url", "--kibana-url"), ("--zipkin-ui", "--kibana")])
def test_both_spellings_set_the_same_links(command: list[str], zipkin: str, kibana: str,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the commands' input files must exist to parse
    for name in ("a.jsonl", "c.json"):
        open(name, "w").close()
    args = build_parser().parse_args([*command, zipkin, "http://zipkin.test:9411/", kibana, "http://kibana.test:5601"])
    assert (args.zipkin_url, args.kibana_url) == ("http://zipkin.test:9411/", "http://kibana.test:5601")
    assert not hasattr(args, "zipkin_ui") and not hasattr(args, "kibana")
