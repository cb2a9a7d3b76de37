"""attach(runtime): the audit trail as a hub listener, chosen by configuration, detachable."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

import commerce_observe.agent.audit as audit
from commerce_observe.agent.audit import MemorySink, SqliteSink, attach, decode
from commerce_observe.agent.audit.wiring import choose_sink
from commerce_observe.config import load_config
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.testing import capture


def test_public_names_match_all() -> None:
    public = [n for n in dir(audit) if not n.startswith("_") and not isinstance(getattr(audit, n), types.ModuleType)]
    assert sorted(audit.__all__) == sorted(public)


def test_attach_writes_every_message_fact_and_detach_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    with capture() as cap:
        detach = attach(cap.runtime, sink=sink, flush_interval_s=0.02)
        writer = detach.writer
        assert writer is not None
        fact = MessageFact(Stage.HANDLED, "kafka", "orders", "e1", "order.created", "checkout", 1, "a" * 32, "b" * 16, 5,
                           consumer_group="billing")
        cap.runtime.hub.emit(fact)
        detach()
        cap.runtime.hub.emit(fact)
    assert [decode(x).event_id for x in sink.lines] == ["e1"]
    assert decode(sink.lines[0]).consumer_group == "billing"


def test_sink_choice_follows_configuration(tmp_path: Path) -> None:
    assert choose_sink(load_config({}, audit_sink="none"), None) is None
    s = choose_sink(load_config({}, audit_sink="auto", audit_path=str(tmp_path / "a.sqlite")), None)
    assert isinstance(s, SqliteSink)
    k = choose_sink(load_config({}, audit_sink="auto", audit_topic="aud"), "127.0.0.1:9092")
    assert k is not None and k.name == "kafka" and getattr(k, "topic") == "aud"
