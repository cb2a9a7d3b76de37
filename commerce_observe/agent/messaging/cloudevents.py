"""CloudEvents binary-binding headers: identity, time and per-destination sequence.

Why CloudEvents: loss and duplicate detection needs every message to carry an id
that survives retries (``ce_id``), who sent it (``ce_source``) and where it stands
in that sender's stream (``ce_sequence``). The binary binding puts exactly these in
``ce_*`` headers, so Java, Go and CloudEvents-SDK consumers read them without us.

``ce_sequence`` is zero-padded to 20 digits: the CloudEvents sequence extension
asks for a *lexicographically* orderable string, and "10" sorts before "9".
``ce_source`` names the service and one producer instance (random token), so a
restarted producer starting again at 1 is a new stream, not a gap.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

from commerce_observe._internal.selfstats import stats

SPECVERSION = "1.0"
GENERIC_TYPE = "commerce.message"
_TYPE_PREFIX = "commerce."


class Sequencer:
    """Monotonic per-destination counters for one producer; thread-safe.

    A plain lock rather than ``itertools.count``: the count's atomicity is a GIL
    detail, and the lock costs tens of nanoseconds next to a span.
    """

    __slots__ = ("_lock", "_last")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}

    def next(self, destination: str) -> int:
        with self._lock:
            value = self._last.get(destination, 0) + 1
            self._last[destination] = value
            return value


def source_for(service: str, label: str) -> str:
    """``/<service>/<label>-<token>``: one stream per producer instance."""
    return f"/{service}/{label}-{os.urandom(4).hex()}"


def event_type_of(type_header: str | None) -> str | None:
    """The event type a ``ce_type`` header names: ``commerce.order.created`` (ours) ->
    ``order.created``; another producer's type is kept as it is; the generic one is None."""
    if not type_header or type_header == GENERIC_TYPE:
        return None
    return type_header[len(_TYPE_PREFIX):] if type_header.startswith(_TYPE_PREFIX) else type_header


def event_type_header(event_type: str | None) -> str:
    return _TYPE_PREFIX + event_type if event_type else GENERIC_TYPE


def format_sequence(value: int) -> str:
    return f"{value:020d}"


def parse_sequence(text: str | None) -> int | None:
    """The number a ``ce_sequence`` holds: ASCII digits only (``str.isdigit`` also
    accepts '١٢٣' and '²', which ``int`` reads differently or not at all)."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    return int(text)


_second_cache: tuple[int, str] = (-1, "")


def format_time(ns: int) -> str:
    """RFC 3339 UTC with microseconds; the date part is cached per second."""
    global _second_cache
    sec, rem = divmod(ns, 1_000_000_000)
    cached_sec, prefix = _second_cache
    if cached_sec != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second_cache = (sec, prefix)
    return f"{prefix}.{rem // 1000:06d}Z"


_parsed_second: tuple[str, int] = ("", 0)


def parse_time(text: str | None) -> int | None:
    """Epoch nanoseconds of an RFC 3339 time, or None when it is not one.

    Our own shape (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, what :func:`format_time`
    writes) takes a fast path: the seconds part is parsed once per second and
    cached, the microseconds are an ``int``. Anything else goes to ``fromisoformat``.
    """
    global _parsed_second
    if not text or len(text) > 40:
        return None
    if len(text) == 27 and text[19] == "." and text.isascii() and text[26] == "Z" and text[20:26].isdigit():
        prefix = text[:19]
        cached, seconds = _parsed_second
        if cached != prefix:
            whole = _parse_iso(prefix + "+00:00")
            if whole is None:
                return None
            seconds = whole // 1_000_000_000
            _parsed_second = (prefix, seconds)
        return seconds * 1_000_000_000 + int(text[20:26]) * 1000
    return _parse_iso(text.replace("Z", "+00:00").replace("z", "+00:00"))


def _parse_iso(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


#: Longest ``ce_*`` header value read (ids, sources, types, times, sequences): ours are
#: under 100 characters; a longer one is a peer's mistake, and kept it would ride into
#: every span and audit record of the message (a Kafka audit message is at most 512 KiB).
MAX_TEXT = 256
#: Counted when a ``ce_*`` header is present but unusable (not text, not UTF-8, too long,
#: not a number or a time): the message is then handled as one without that header.
UNUSABLE = "messaging.unusable_ce_header"


def header_text(value: object) -> str | None:
    """An application- or peer-set ``ce_*`` header as text, or None.

    Bytes must be UTF-8: decoding with replacement would map two different invalid
    ids to one text, and the auditor would take two messages for one. Anything but
    text or bytes (AMQP tables and arrays, numbers), invalid UTF-8 and values over
    :data:`MAX_TEXT` count :data:`UNUSABLE` and read as absent. Never raises.
    """
    if type(value) is bytes:  # Kafka headers: the common case first
        if len(value) <= MAX_TEXT:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
    elif value is None:
        return None
    elif isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return header_text(bytes(value))
    stats.incr(UNUSABLE)
    return None


def checked(parsed: int | None, text: str | None) -> int | None:
    """``parsed`` (a sequence or time read from ``text``), counting :data:`UNUSABLE`
    when a header was there and did not parse."""
    if parsed is None and text is not None:
        stats.incr(UNUSABLE)
    return parsed
