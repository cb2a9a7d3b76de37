"""The audit record: one line of tab-separated bytes per message and stage.

Why this encoding and not JSON or a fixed binary layout: the auditor must read a
million records a second-ish in pure Python, and ``bytes.split(b"\\t", n)`` in C
followed by reading a few list slots is several times cheaper than ``json.loads``
(which builds a dict and decodes every string); a fixed binary layout would be
cheaper still to unpack but forces a maximum length on event ids, sources and
topics, which we cannot promise. Lines are also half the size of the JSON
equivalent, readable with ``cut``, and survive a torn write (an incomplete last
line is simply ignored). ``benchmarks/auditor.py`` measures both.

Field order is fixed and the hot fields come first, so the auditor splits only
as far as it needs. A record starts with its stage letter; a future layout will
start with a different byte. Text fields escape ``\\``, tab and newline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commerce_observe.agent.messaging.facts import MessageFact, Stage

#: Stage letter on the wire; the role follows from it (P/A/F producer, H/X consumer).
STAGE_CODE: dict[Stage, bytes] = {
    Stage.PUBLISHED: b"P",
    Stage.ACKED: b"A",
    Stage.SEND_FAILED: b"F",
    Stage.HANDLED: b"H",
    Stage.HANDLE_FAILED: b"X",
}
CODE_STAGE: dict[bytes, Stage] = {v: k for k, v in STAGE_CODE.items()}
#: Not a message stage: a marker that this process dropped audit records (its spool was
#: full). ``time_ns`` is the first dropped record's time, ``published_ns`` the last's,
#: ``sequence`` how many, ``source`` who; the auditor reports the window as a GAP in the
#: trail instead of judging the events whose evidence may be in it.
TRAIL_GAP = b"D"
PRODUCER_CODES = frozenset((b"P", b"A", b"F"))

#: Field positions, in wire order.
FIELDS: tuple[str, ...] = (
    "stage", "time_ns", "event_id", "consumer_group", "published_ns", "source",
    "destination", "sequence", "partition", "offset", "trace_id", "span_id",
    "event_type", "order_id", "payment_id", "system", "error",
)
(STAGE, TIME, EVENT_ID, GROUP, PUBLISHED, SOURCE, DESTINATION, SEQUENCE, PARTITION,
 OFFSET, TRACE_ID, SPAN_ID, EVENT_TYPE, ORDER_ID, PAYMENT_ID, SYSTEM, ERROR) = range(len(FIELDS))
N_FIELDS = len(FIELDS)


def _text(value: str | None) -> bytes:
    if not value:
        return b""
    raw = value.encode("utf-8", "replace")
    if b"\\" in raw or b"\t" in raw or b"\n" in raw or b"\r" in raw:
        raw = raw.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return raw


def _num(value: int | None) -> bytes:
    return b"" if value is None else b"%d" % value


def unescape(raw: bytes) -> str:
    """Inverse of the writer's escaping, for display only (keys stay escaped)."""
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            out += {b"t": b"\t", b"n": b"\n", b"r": b"\r"}.get(nxt, nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "replace")


def encode(fact: MessageFact) -> bytes:
    """One audit line (without the newline) for ``fact``."""
    return b"\t".join((
        STAGE_CODE[fact.stage], _num(fact.time_ns), _text(fact.event_id), _text(fact.consumer_group),
        _num(fact.published_ns), _text(fact.source), _text(fact.destination), _num(fact.sequence),
        _num(fact.partition), _num(fact.offset), _text(fact.trace_id), _text(fact.span_id),
        _text(fact.event_type), _text(fact.order_id), _text(fact.payment_id), _text(fact.system),
        _text(fact.error),
    ))


_STAGE_TEXT: dict[Stage, str] = {k: v.decode("ascii") for k, v in STAGE_CODE.items()}
_SEPS_PER_LINE = N_FIELDS - 1


def encode_batch(facts: Sequence[MessageFact]) -> list[bytes]:
    """``[encode(f) for f in facts]``, byte for byte, at a tenth of the CPU.

    The writer's hot path. Each fact becomes one ``str`` (a single ``"\\t".join`` of
    its fields, integers through ``str``), the batch one ``"\\n".join``, then one
    UTF-8 encode and one ``split``: a handful of C calls per batch instead of ~20
    Python calls per fact. UTF-8 encoding is per code point, so encoding the joined
    text equals joining the encoded fields (``"replace"`` included). Escaping is
    checked once for the whole batch: if the text holds a backslash or CR, or more
    tabs/newlines than the separators, some field needs escaping and those facts
    (only) go through :func:`encode`.
    """
    st = _STAGE_TEXT
    join = "\t".join
    parts = [join((
        st[f.stage], str(f.time_ns), f.event_id or "", f.consumer_group or "",
        "" if f.published_ns is None else str(f.published_ns), f.source or "", f.destination or "",
        "" if f.sequence is None else str(f.sequence), "" if f.partition is None else str(f.partition),
        "" if f.offset is None else str(f.offset), f.trace_id or "", f.span_id or "",
        f.event_type or "", f.order_id or "", f.payment_id or "", f.system or "", f.error or "",
    )) for f in facts]
    if not parts:
        return []
    text = "\n".join(parts)
    if ("\\" not in text and "\r" not in text and text.count("\t") == _SEPS_PER_LINE * len(parts)
            and text.count("\n") == len(parts) - 1):
        return text.encode("utf-8", "replace").split(b"\n")
    return [p.encode("utf-8", "replace") if ("\\" not in p and "\r" not in p and "\n" not in p
                                               and p.count("\t") == _SEPS_PER_LINE) else encode(f)
            for p, f in zip(parts, facts)]


def encode_one(f: MessageFact) -> bytes:
    """``encode(f)``, byte for byte, the way :func:`encode_batch` does it for one fact
    (the journal encodes each consumer record as it happens)."""
    text = "\t".join((
        _STAGE_TEXT[f.stage], str(f.time_ns), f.event_id or "", f.consumer_group or "",
        "" if f.published_ns is None else str(f.published_ns), f.source or "", f.destination or "",
        "" if f.sequence is None else str(f.sequence), "" if f.partition is None else str(f.partition),
        "" if f.offset is None else str(f.offset), f.trace_id or "", f.span_id or "",
        f.event_type or "", f.order_id or "", f.payment_id or "", f.system or "", f.error or "",
    ))
    if "\\" not in text and "\r" not in text and "\n" not in text and text.count("\t") == _SEPS_PER_LINE:
        return text.encode("utf-8", "replace")
    return encode(f)


#: What a line may start with: a stage letter or the trail-gap marker.
_FIRST_BYTES = frozenset(CODE_STAGE) | {TRAIL_GAP}


def is_valid(line: bytes) -> bool:
    """Cheap structural check used on replay and on input: right field count and stage."""
    return line.count(b"\t") == _SEPS_PER_LINE and line[:1] in _FIRST_BYTES


def valid_lines(lines: Sequence[bytes]) -> list[bytes]:
    """``[x for x in lines if is_valid(x)]`` with the check inlined: no Python call per
    line (a journal replay checks every record it ships)."""
    seps, first = _SEPS_PER_LINE, _FIRST_BYTES
    return [x for x in lines if x.count(b"\t") == seps and x[:1] in first]


def trail_gap_line(first_ns: int, last_ns: int, count: int, source: str | None) -> bytes:
    """The :data:`TRAIL_GAP` marker line for ``count`` records dropped between the two times."""
    fields = [b""] * N_FIELDS
    fields[STAGE], fields[TIME], fields[PUBLISHED] = TRAIL_GAP, _num(first_ns), _num(last_ns)
    fields[SOURCE], fields[SEQUENCE] = _text(source), _num(count)
    fields[ERROR] = _text(f"{count} audit records dropped: the local spool was full")
    return b"\t".join(fields)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A decoded line, for reports, tests and tools (the auditor works on raw lines)."""

    stage: Stage
    time_ns: int
    event_id: str
    consumer_group: str | None
    published_ns: int | None
    source: str | None
    destination: str
    sequence: int | None
    partition: int | None
    offset: int | None
    trace_id: str
    span_id: str
    event_type: str | None
    order_id: str | None
    payment_id: str | None
    system: str
    error: str | None

    @property
    def role(self) -> str:
        return self.stage.role


def _opt_int(raw: bytes) -> int | None:
    return int(raw) if raw else None


def _opt_str(raw: bytes) -> str | None:
    return unescape(raw) if raw else None


def decode(line: bytes) -> AuditRecord:
    """Parse one line; raises ValueError when it is not a version-1 record."""
    f = line.rstrip(b"\n").split(b"\t")
    if len(f) != N_FIELDS or f[0] not in CODE_STAGE:
        raise ValueError(f"not an audit record: {line[:80]!r}")
    return AuditRecord(
        CODE_STAGE[f[STAGE]], int(f[TIME]), unescape(f[EVENT_ID]), _opt_str(f[GROUP]),
        _opt_int(f[PUBLISHED]), _opt_str(f[SOURCE]), unescape(f[DESTINATION]), _opt_int(f[SEQUENCE]),
        _opt_int(f[PARTITION]), _opt_int(f[OFFSET]), unescape(f[TRACE_ID]), unescape(f[SPAN_ID]),
        _opt_str(f[EVENT_TYPE]), _opt_str(f[ORDER_ID]), _opt_str(f[PAYMENT_ID]), unescape(f[SYSTEM]),
        _opt_str(f[ERROR]),
    )


def first_at_or_after(lines: Sequence[bytes], from_ns: int) -> int | None:
    """Index of the first line whose time is at or after ``from_ns``, None when no line's is.
    A line whose time does not parse (any producer may write to the topic, a file may hold
    other text) counts as before."""
    for i, line in enumerate(lines):
        t = line.split(b"\t", TIME + 1)[TIME : TIME + 1]
        if t and t[0].isdigit() and int(t[0]) >= from_ns:
            return i
    return None
