"""Header assertions shared by the per-client tests: byte formats per the specs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from commerce_observe.agent.export.record import SpanRecord

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")
B3 = re.compile(r"([0-9a-f]{32})-([0-9a-f]{16})-1")
CE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def as_dict(headers: object) -> dict[str, bytes | str]:
    if isinstance(headers, Mapping):
        return {str(k): v for k, v in headers.items()}
    assert isinstance(headers, (list, tuple)), headers
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in headers}


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def assert_trace_headers(headers: Mapping[str, object], span: SpanRecord, *, binary_elastic: bool) -> None:
    """Every format names ``span`` (the PRODUCER span) as the parent, byte for byte."""
    tid, sid = f"{span.trace_id:032x}", f"{span.span_id:016x}"
    assert TRACEPARENT.fullmatch(text(headers["traceparent"])).groups() == (tid, sid)  # type: ignore[union-attr]
    assert B3.fullmatch(text(headers["b3"])).groups() == (tid, sid)  # type: ignore[union-attr]
    if binary_elastic:
        raw = headers["elasticapmtraceparent"]
        assert isinstance(raw, bytes) and len(raw) == 29
        assert raw == b"\x00\x00" + bytes.fromhex(tid) + b"\x01" + bytes.fromhex(sid) + b"\x02\x01"
    else:
        assert text(headers["elastic-apm-traceparent"]) == f"00-{tid}-{sid}-01"


def assert_cloudevents(headers: Mapping[str, object], *, sequence: int, event_id: str | None = None) -> None:
    assert text(headers["ce_specversion"]) == "1.0"
    assert re.fullmatch(r"[0-9a-f]{32}", text(headers["ce_id"])) or event_id
    if event_id is not None:
        assert text(headers["ce_id"]) == event_id
    assert text(headers["ce_type"]).startswith("commerce.")
    assert text(headers["ce_source"]).startswith("/")
    assert CE_TIME.fullmatch(text(headers["ce_time"]))
    assert text(headers["ce_sequence"]) == f"{sequence:020d}"
