"""install() starts the audit trail on the first message fact, and only then."""

import time
from pathlib import Path

from commerce_observe.audit.sinks import read_sqlite
from commerce_observe.hub import hub
from commerce_observe.messaging.facts import MessageFact, Stage
from commerce_observe.testing import capture


def _fact(event_id: str) -> MessageFact:
    return MessageFact(Stage.PUBLISHED, "kafka", "orders", event_id, "order.created", "/svc/p1", 1,
                       "a" * 32, "b" * 16, time.time_ns())


def test_no_message_no_audit_files(tmp_path: Path) -> None:
    with capture(audit_sink="sqlite", audit_path=str(tmp_path / "a.sqlite"), spool_dir=str(tmp_path / "spool")):
        pass
    assert list(tmp_path.iterdir()) == []


def test_first_message_starts_the_trail_and_every_fact_is_written(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    with capture(audit_sink="sqlite", audit_path=str(db), spool_dir=str(tmp_path / "spool")):
        for n in range(5):
            hub().emit(_fact(f"ev-{n}"))
    lines = [line for batch in read_sqlite(str(db)) for line in batch]
    assert len(lines) == 5
    assert all(f"ev-{n}".encode() in lines[n] for n in range(5))
