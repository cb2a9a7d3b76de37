"""What one ``commerce-observe watch`` process is told: buckets, windows, where its state lives.

One frozen object handed down to every stage, so the loop, the scorer and the
alert stage agree on the bucket size and on when a bucket counts as closed.
Event time drives everything: a bucket ``[s, e)`` of the series closes once the
watermark (the newest time seen in the streams, or the wall clock when the
streams are idle) reaches ``e + lateness``; an audit bucket waits ``grace``
longer, until every event published in it has been judged.
"""

from __future__ import annotations

from dataclasses import dataclass

#: 90 days: "the last three months" the detector learns from at first start.
HISTORY_DAYS = 90


@dataclass(frozen=True)
class WatchSettings:
    bucket_s: int = 3600
    """Series bucket (orders, revenue, payment failures); a multiple of a minute (the store's rollups)."""
    audit_bucket_s: int = 10
    """Findings are grouped into alerts per audit bucket of this many seconds."""
    grace_s: float = 30.0
    """Time an event has to be handled before it is LOST (the auditor's grace)."""
    sla_s: float = 5.0
    """Publication-to-handled limit for LATE."""
    lateness_s: float = 5.0
    """How long after its end a bucket still takes data (writers flush late)."""
    history_days: int = HISTORY_DAYS
    min_history: int = 72
    """Buckets a series needs before it is scored (the detector's warm-up)."""
    timezone: str = "UTC"
    checkpoint_every_s: float = 5.0
    """Wall seconds between checkpoints (one is also taken after every scored bucket and at stop)."""
    poll_idle_s: float = 0.2
    """Wait when the streams had nothing new."""
    page_rows: int = 200
    """Audit rows (batches of lines) read per poll of the SQLite audit file."""

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or self.bucket_s % 60:
            raise ValueError(f"bucket must be a whole number of minutes, got {self.bucket_s}s")
        if self.audit_bucket_s <= 0:
            raise ValueError("audit bucket must be positive")
        if self.grace_s <= 0 or self.lateness_s < 0 or self.sla_s <= 0:
            raise ValueError("grace and sla must be positive, lateness not negative")

    @property
    def bucket_ns(self) -> int:
        return self.bucket_s * 1_000_000_000

    @property
    def audit_bucket_ns(self) -> int:
        return self.audit_bucket_s * 1_000_000_000

    @property
    def lateness_ns(self) -> int:
        return int(self.lateness_s * 1e9)

    @property
    def grace_ns(self) -> int:
        return int(self.grace_s * 1e9)
