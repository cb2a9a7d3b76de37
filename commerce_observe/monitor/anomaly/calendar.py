"""Known events (promotions, holidays) that must neither alert nor be learned.

File format (JSON list)::

    [{"start": "2024-11-29T00:00:00+01:00", "end": "2024-12-02T00:00:00+01:00",
      "scope": "orders:product-*", "name": "black-friday"}]

``start`` is inclusive, ``end`` exclusive, ISO 8601; a timestamp without offset
is read in the detector's shop time zone. ``scope`` is ``"*"`` (every series), an
exact series name, a glob (``orders:sku-1*``) or a prefix ending in ``*``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    start: datetime
    end: datetime
    scope: str
    name: str

    def covers_series(self, series: str) -> bool:
        if self.scope == "*" or self.scope == series:
            return True
        if any(ch in self.scope for ch in "*?["):
            return fnmatch.fnmatchcase(series, self.scope)
        return False

    def covers_time(self, ts: datetime) -> bool:
        return self.start <= ts < self.end


def _parse(value: str, tz: ZoneInfo) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


class Calendar:
    """A list of :class:`CalendarEvent`, queried per (series, timestamp)."""

    def __init__(self, events: list[CalendarEvent] | None = None) -> None:
        self.events: list[CalendarEvent] = sorted(events or [], key=lambda e: e.start)
        self._scope_cache: dict[str, list[CalendarEvent]] = {}

    @classmethod
    def from_json(cls, data: str | bytes | list[dict[str, str]], tz: str | ZoneInfo = "UTC") -> Calendar:
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        raw = json.loads(data) if isinstance(data, (str, bytes)) else data
        if not isinstance(raw, list):
            raise ValueError("calendar JSON must be a list of {start, end, scope, name} objects")
        events = []
        for i, item in enumerate(raw):
            try:
                ev = CalendarEvent(
                    start=_parse(str(item["start"]), zone),
                    end=_parse(str(item["end"]), zone),
                    scope=str(item.get("scope", "*")),
                    name=str(item.get("name", f"event-{i}")),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"calendar entry {i} is invalid: {exc}") from exc
            if ev.end <= ev.start:
                raise ValueError(f"calendar entry {i} ({ev.name}) ends before it starts")
            events.append(ev)
        return cls(events)

    @classmethod
    def load(cls, path: str | Path, tz: str | ZoneInfo = "UTC") -> Calendar:
        return cls.from_json(Path(path).read_text(encoding="utf-8"), tz)

    def _for_series(self, series: str) -> list[CalendarEvent]:
        hit = self._scope_cache.get(series)
        if hit is None:
            hit = [e for e in self.events if e.covers_series(series)]
            self._scope_cache[series] = hit
        return hit

    def event_at(self, series: str, ts: datetime) -> str | None:
        """Name of the known event covering ``series`` at ``ts``, or None."""
        for ev in self._for_series(series):
            if ev.start > ts:
                break
            if ev.covers_time(ts):
                return ev.name
        return None

    def active(self, ts: datetime) -> list[CalendarEvent]:
        """Events whose time covers ``ts`` (any scope), in start order."""
        out = []
        for ev in self.events:
            if ev.start > ts:
                break
            if ev.covers_time(ts):
                out.append(ev)
        return out

    def __len__(self) -> int:
        return len(self.events)
