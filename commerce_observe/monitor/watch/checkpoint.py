"""The watch's state, and its checkpoint: one directory, written atomically.

Why a checkpoint and not a rebuild: at first start the detector learns three
months of history (tens of seconds for 10,000 products), the auditor holds every
event still inside its grace window, and the alert engines know what is firing.
A restart loads all of it and reads on from the input positions saved with it,
so it neither relearns, nor skips or repeats a bucket, nor sends an alert again
(the notification log beside it says what was sent).

Layout of the directory:

* ``state.pickle``: :class:`WatchState` (input positions, auditor, held findings,
  alert engines and outbox, series names, counters), replaced atomically;
* ``models-<n>.npz``: the detector, saved with ``AnomalyDetector.save`` only when
  a bucket was scored since the last save; ``state.pickle`` names the one that
  belongs to it, older ones are removed after the switch;
* ``notifications.sqlite``: the :class:`~commerce_observe.monitor.watch.alerting.NotificationLog`.

The state file is our own, written and read by the same process kind: pickle
keeps the auditor's compact byte-level state as it is, with no schema to drift.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commerce_observe.monitor.anomaly import AnomalyDetector, Calendar
from commerce_observe.monitor.audit.findings import Finding
from commerce_observe.monitor.watch.alerting import AlertState
from commerce_observe.monitor.watch.auditing import AuditStage
from commerce_observe.monitor.watch.series import SeriesBuilder
from commerce_observe.monitor.watch.sources import AuditPosition

STATE_FILE = "state.pickle"
LOG_FILE = "notifications.sqlite"
VERSION = 1


@dataclass
class WatchState:
    start_ns: int  # first series bucket scored as it closed (history before it was learned)
    next_bucket_ns: int  # first series bucket not yet scored
    audit: AuditStage
    alerts: AlertState
    audit_position: AuditPosition = field(default_factory=AuditPosition)
    kafka_offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> next offset
    builder: SeriesBuilder | None = None  # Kafka mode: buckets still open
    products: set[str] = field(default_factory=set)
    currencies: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    #: scale-out: findings another member claimed and has not finished (taken over if its lease runs out)
    contested: list[Finding] = field(default_factory=list)
    learned_buckets: int = 0
    model_file: str = ""
    version: int = VERSION

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


class Checkpoints:
    """Saves and loads :class:`WatchState` plus the detector in ``directory``."""

    def __init__(self, directory: str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    @property
    def log_path(self) -> str:
        return str(self.dir / LOG_FILE)

    def exists(self) -> bool:
        return (self.dir / STATE_FILE).exists()

    def load(self, calendar: Calendar | None = None) -> tuple[WatchState, AnomalyDetector]:
        with open(self.dir / STATE_FILE, "rb") as fh:
            state: WatchState = pickle.load(fh)  # noqa: S301 - our own file, in our own state directory
        if getattr(state, "version", None) != VERSION:
            raise ValueError(f"{self.dir / STATE_FILE}: state version {getattr(state, 'version', None)}, expected {VERSION}")
        if not hasattr(state, "contested"):  # written before scale-out kept contested findings
            state.contested = []
        detector = AnomalyDetector.load(self.dir / state.model_file, calendar)
        self._generation = int(state.model_file.split("-")[1].split(".")[0])
        return state, detector

    def save(self, state: WatchState, detector: AnomalyDetector | None) -> None:
        """Write ``state`` (and ``detector`` when given: it changed) so that a crash at any point
        leaves either the previous checkpoint or this one."""
        old = state.model_file
        if detector is not None or not old:
            self._generation += 1
            state.model_file = f"models-{self._generation}.npz"
            assert detector is not None
            detector.save(self.dir / state.model_file)
        _atomic_write(self.dir / STATE_FILE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        if old and old != state.model_file:
            for p in self.dir.glob("models-*.npz"):
                if p.name != state.model_file:
                    p.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def describe(state: WatchState) -> dict[str, Any]:
    """A few facts about a checkpoint, for the log line at start."""
    return {"start_ns": state.start_ns, "next_bucket_ns": state.next_bucket_ns, "learned_buckets": state.learned_buckets}
