"""Sequence-gap tracking per (source, destination).

Producers number their events per (source, destination) (the ``ce_sequence``
header). A number that never shows up in any producer record means an event
vanished before it was even reported as published (a crash between numbering and
sending, an uninstrumented code path) - something no per-event check can see.

Reordering is normal (several producer threads, audit records spread over
partitions), so a missing number is only declared a gap once the *next* present
number is older than the horizon (watermark minus grace): by then the missing one
has had the whole grace period to arrive. A number that still arrives later
retracts its gap. Memory is the out-of-order set, bounded by the grace window.
"""

from __future__ import annotations

_NEVER = 1 << 80  # later than any time in ns


class SeqTrack:
    """Expected next number plus the numbers seen ahead of it (number -> time)."""

    __slots__ = ("expected", "pending", "gaps", "earliest")

    def __init__(self) -> None:
        self.expected: int | None = None  # unknown until the first horizon passes
        self.pending: dict[int, int] = {}
        self.gaps: list[list[int]] = []  # [first, last] inclusive, open to retraction
        # a lower bound of the pending times: resolve() has nothing to do before it
        self.earliest = _NEVER

    def add(self, seq: int, time_ns: int) -> None:
        exp, pending = self.expected, self.pending
        if exp is None or seq > exp:
            if seq not in pending:
                pending[seq] = time_ns
                if time_ns < self.earliest:
                    self.earliest = time_ns
        elif seq == exp:
            exp += 1
            while exp in pending:
                del pending[exp]
                exp += 1
            self.expected = exp
        elif self.gaps:
            self._retract(seq)

    def _retract(self, seq: int) -> None:
        for i, (lo, hi) in enumerate(self.gaps):
            if lo <= seq <= hi:
                parts = [[a, b] for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b]
                self.gaps[i : i + 1] = parts
                return

    def resolve(self, horizon_ns: int) -> list[tuple[int, int]]:
        """Declare the gaps whose following number is older than ``horizon_ns``."""
        pending = self.pending
        found: list[tuple[int, int]] = []
        if self.earliest > horizon_ns:  # every pending number is too recent
            return found
        while pending:
            lo = min(pending)
            if pending[lo] > horizon_ns:
                break
            if self.expected is None:
                self.expected = lo  # the stream's first number we can vouch for
            elif lo > self.expected:
                found.append((self.expected, lo - 1))
                self.gaps.append([self.expected, lo - 1])
            exp = lo
            while exp in pending:
                del pending[exp]
                exp += 1
            self.expected = exp
        self.earliest = min(pending.values()) if pending else _NEVER
        return found
