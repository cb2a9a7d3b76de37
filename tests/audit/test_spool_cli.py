"""``commerce-observe audit --spool DIR`` reads the whole spool: the folder's own
segments and its ``pid-*`` folders (processes that found the folder taken, dead
ones included), each from its replay cursor, so nothing already replayed into the
sink is read twice - and never takes a lock a live process needs.

The crash test runs real service processes (``tests/audit/crash_child.py``, default
settings) whose sink is unreachable, so their whole trail waits in the spool: a
producer holding the spool folder (so every consumer gets a ``pid-*`` folder), a
consumer killed right after handling a batch it did not commit, and its successor
that handles everything again, killed too. Before the fix the CLI read only the
producer's records and called every message LOST.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from collections.abc import Iterable, Sequence

from commerce_observe.agent.audit.sinks import SinkUnavailable, SqliteSink, read_sqlite
from commerce_observe.agent.audit.spool import Spool, read_spool
from commerce_observe.agent.audit.wiring import open_spool
from commerce_observe.monitor.cli import main
from tests.audit.crash_harness import Child, Truth, audit, child_env, judge
from tests.audit.helpers import Ev
from tests.support import kafka_clients


def _lines(batches: Iterable[list[bytes]]) -> list[bytes]:
    return [line for batch in batches for line in batch]


def test_read_spool_reads_pid_folders_from_their_cursors_and_adopt_keeps_the_cursor(tmp_path: Path) -> None:
    root = str(tmp_path / "spool")
    events = [Ev(f"e{i}", seq=i + 1) for i in range(12)]
    live = Spool(root)  # a live process holds the folder...
    produced = [line for e in events[:4] for line in (e.published(), e.acked())]
    live.append(produced)
    other = open_spool(root)  # ...so the next one gets pid-<pid>
    assert other.directory == os.path.join(root, f"pid-{os.getpid()}")
    other.append([e.handled("billing") for e in events[:8]], sync=True)
    other.rotate()

    class Once(SqliteSink):  # the sink takes the first batch, then goes down
        def write(self, lines: Sequence[bytes]) -> None:
            if os.path.exists(self.path):
                raise SinkUnavailable("down", lines)
            super().write(lines)

    sink = Once(str(tmp_path / "a.sqlite"))
    with pytest.raises(SinkUnavailable):
        other.replay(sink, batch=3)  # the first 3 handlings are in the sink, the cursor after them
    replayed = _lines(read_sqlite(sink.path))
    assert replayed == [e.handled("billing") for e in events[:3]]

    # read while both processes are alive: no lock taken, nothing replayed read again
    assert sorted(_lines(read_spool(root))) == sorted(produced + [e.handled("billing") for e in events[3:8]])
    live.close()

    # the sink and the spool together: every record once, so nothing is LOST and nothing handled twice
    assert main(["audit", "--sqlite", sink.path, "--spool", root, "--as-of", "all", "--format", "json"]) == 0

    # its process is gone: a new one adopts the folder, without the part already sent
    other.close()
    heir = open_spool(root)
    assert heir.directory == root and not os.path.exists(other.directory)
    assert sorted(_lines(heir.read_all())) == sorted(produced + [e.handled("billing") for e in events[3:8]])
    heir.close()


def test_reading_a_spool_takes_no_lock(tmp_path: Path) -> None:
    root = str(tmp_path / "spool")
    Spool(root).close()
    reader = read_spool(root)
    list(reader)
    Spool(root).close()  # still free for the service
    assert not any(n.startswith("pid-") for n in os.listdir(root))


N = 40


@pytest.mark.kafka
def test_cli_on_the_spool_of_killed_processes_finds_the_duplicates_and_no_false_loss(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    # A leading letter: an all-digit tag made ids such as "56572703-00009", which the masker
    # rightly reads as a Luhn-valid Maestro number and masks (docs/privacy.md, event ids).
    tag = "s" + uuid.uuid4().hex[:7]
    topic, group = f"spool-{tag}", f"g-{tag}"
    kafka_clients.create_topic(kafka_bootstrap, topic, 1)
    # the sink cannot be opened (its folder does not exist): every record stays in the spool
    env = child_env(f"spool-audit-{tag}", "spool-cli", COMMERCE_OBSERVE_AUDIT_SINK="sqlite",
                    COMMERCE_OBSERVE_AUDIT_PATH=str(tmp_path / "missing" / "audit.sqlite"))
    client, truth = "confluent-kafka", Truth()
    producer = Child(tmp_path, env, "produce", client, kafka_bootstrap, topic, tag, str(N), "hold")
    try:
        assert producer.wait_for("ACKED", 60), producer.lines
        truth.acked.update(f"{tag}-{i:05d}" for i in range(N))
        first = Child(tmp_path, env, "consume", client, kafka_bootstrap, topic, group, "1", "nocommit")
        assert first.wait_for("W", 60), first.lines
        truth.take(first.kill9())  # right after handling a batch it did not commit
        second = Child(tmp_path, env, "consume", client, kafka_bootstrap, topic, group, "1", "auto")
        deadline = time.monotonic() + 60
        while len({x for x in second.lines if x.startswith("E ")}) < N and time.monotonic() < deadline:
            second.wait_for("never", 0.2)
        truth.take(second.kill9())
    finally:
        producer.kill9()
    spool = tmp_path / ".commerce-observe-spool"
    assert [p.name for p in spool.iterdir() if p.name.startswith("pid-")], "the consumers had folders of their own"
    assert sum(truth.ended.values()) > N, "the uncommitted batch was handled again"

    report = audit(["--spool", str(spool)])
    verdict = judge(report, truth, group)
    assert not verdict.missed and not verdict.false, verdict
    assert verdict.duplicates > 0 and verdict.losses == 0

    # the shared folder alone holds only the producer's records: every message would look LOST
    own = [line for seg in sorted(spool.glob("seg-*.log")) for line in seg.read_bytes().rstrip(b"\0").splitlines()]
    assert own and {line[:1] for line in own} == {b"P", b"A"}
