"""Control characters around a trace header value are not stripped into a valid header.

``str.strip()`` removes CR, LF, vertical tab, form feed and the separators
``\\x1c``-``\\x1f``: a value smuggled in with them used to parse as a valid parent.
Only HTTP's optional whitespace (spaces, tabs) is trimmed; anything else that is
not printable makes the value invalid (counted), so the message starts a new trace.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace

from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.propagation import HttpHeaders, KafkaHeaders, extract
from commerce_observe.agent.propagation._values import INVALID

VALUES = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
    "elastic-apm-traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
CONTROLS = ["\n", "\r\n", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85"]


def _valid(headers: dict[str, str]) -> bool:
    return trace.get_current_span(extract(HttpHeaders(headers))).get_span_context().is_valid


@pytest.mark.parametrize("name", list(VALUES))
def test_spaces_and_tabs_are_trimmed(name: str) -> None:
    assert _valid({name: " \t" + VALUES[name] + "\t "})


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("control", CONTROLS, ids=repr)
@pytest.mark.parametrize("where", ["before", "after", "inside"])
def test_control_characters_make_the_value_invalid(name: str, control: str, where: str) -> None:
    value = VALUES[name]
    smuggled = {"before": control + value, "after": value + control,
                "inside": value[:10] + control + value[10:]}[where]
    assert not _valid({name: smuggled})
    raw = {"before": b"\r\n", "after": b"\n"}.get(where, b"\x00")
    kafka = [(name, raw + value.encode() if where == "before" else value.encode() + raw)]
    assert not trace.get_current_span(extract(KafkaHeaders(kafka))).get_span_context().is_valid
    assert stats.get(INVALID) + stats.get("propagation.undecodable_header") >= 1
