"""Byte-exact vectors from the W3C and B3 specifications and the Elastic agents."""

from __future__ import annotations

import pytest
from elasticapm.utils.disttracing import TraceParent

from commerce_observe.agent.propagation import formats as f

# W3C Trace Context, section 3.2 examples.
W3C_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
W3C_SPAN = 0xB7AD6B7169203331


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", f.Ids(W3C_TRACE, W3C_SPAN, True)),
        ("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00", f.Ids(W3C_TRACE, 0x00F067AA0BA902B7, False)),
        # a future version may append fields
        ("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-will-be-like", f.Ids(W3C_TRACE, W3C_SPAN, True)),
        # flags other than the sampled bit are kept out of the decision
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09", f.Ids(W3C_TRACE, W3C_SPAN, True)),
    ],
)
def test_w3c_valid(text: str, expected: f.Ids) -> None:
    assert f.parse_traceparent(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # v00 is exact
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        "",
        "garbage",
    ],
)
def test_w3c_invalid(text: str) -> None:
    assert f.parse_traceparent(text) is None


def test_w3c_format() -> None:
    assert f.format_traceparent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True) == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


# openzipkin/b3-propagation README examples.
B3_TRACE = 0x80F198EE56343BA864FE8B2A57D3EFF7
B3_SPAN = 0xE457B5A2E4D86BD1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", f.Ids(B3_TRACE, B3_SPAN, True)),
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0", f.Ids(B3_TRACE, B3_SPAN, False)),
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d", f.Ids(B3_TRACE, B3_SPAN, True, True)),
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1", f.Ids(B3_TRACE, B3_SPAN, True)),
        # 64-bit trace id: left-padded to 128 bits
        ("463ac35c9f6413ad-e457b5a2e4d86bd1-1", f.Ids(0x463AC35C9F6413AD, B3_SPAN, True)),
        ("0", f.DENY),
    ],
)
def test_b3_single_valid(text: str, expected: f.Ids) -> None:
    assert f.parse_b3_single(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1", "d", "x", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
     "80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-1",
     "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",
     "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",
     "80f198ee56343ba864fe8b2a57d3eff-e457b5a2e4d86bd1-1"],
)
def test_b3_single_invalid(text: str) -> None:
    assert f.parse_b3_single(text) is None


def test_b3_single_format_pads_and_marks_debug() -> None:
    assert f.format_b3_single(f"{0x463AC35C9F6413AD:032x}", "e457b5a2e4d86bd1", True) == "0000000000000000463ac35c9f6413ad-e457b5a2e4d86bd1-1"
    assert f.format_b3_single(f"{B3_TRACE:032x}", "e457b5a2e4d86bd1", True, True).endswith("-d")
    assert f.format_b3_single(f"{B3_TRACE:032x}", "e457b5a2e4d86bd1", False).endswith("-0")


def test_b3_multi_as_brave_and_sleuth_write_it() -> None:
    ids = f.parse_b3_multi("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "05e3ac9a4f6e3b90", "1", None)
    assert ids == f.Ids(B3_TRACE, B3_SPAN, True)
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", None, "true", None) == f.Ids(0x463AC35C9F6413AD, B3_SPAN, True)
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", None, "0", None) == f.Ids(0x463AC35C9F6413AD, B3_SPAN, False)
    # X-B3-Flags: 1 is debug, which implies sampled
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", None, None, "1") == f.Ids(0x463AC35C9F6413AD, B3_SPAN, True, True)
    # py-zipkin writes X-B3-Flags: 0 on every request
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", None, "1", "0") == f.Ids(0x463AC35C9F6413AD, B3_SPAN, True)
    assert f.parse_b3_multi(None, None, None, "0", None) is f.DENY
    assert f.parse_b3_multi(None, None, None, "1", None) is None
    assert f.parse_b3_multi("463ac35c9f6413ad", None, None, "1", None) is None
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", "zz", "1", None) is None
    assert f.parse_b3_multi("463ac35c9f6413ad", "e457b5a2e4d86bd1", None, "yes", None) is None


def test_b3_multi_format() -> None:
    assert f.format_b3_multi("0000000000000000463ac35c9f6413ad", "e457b5a2e4d86bd1", True) == (
        ("X-B3-TraceId", "0000000000000000463ac35c9f6413ad"),
        ("X-B3-SpanId", "e457b5a2e4d86bd1"),
        ("X-B3-Sampled", "1"),
    )
    assert f.format_b3_multi(f"{B3_TRACE:032x}", "e457b5a2e4d86bd1", True, True)[-1] == ("X-B3-Flags", "1")


ELASTIC_VECTOR = bytes.fromhex("00" "00" "0af7651916cd43dd8448eb211c80319c" "01" "b7ad6b7169203331" "02" "01")


def test_elastic_binary_layout_is_byte_exact() -> None:
    ids = f.Ids(W3C_TRACE, W3C_SPAN, True)
    assert f.format_elastic_binary(W3C_TRACE, W3C_SPAN, True) == ELASTIC_VECTOR
    assert len(ELASTIC_VECTOR) == f.BINARY_LEN == 29
    assert f.parse_elastic_binary(ELASTIC_VECTOR) == ids
    assert f.format_elastic_binary(W3C_TRACE, W3C_SPAN, False)[-1] == 0


def test_elastic_binary_matches_the_elastic_python_agent() -> None:
    tp = TraceParent.from_string("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert tp is not None
    assert tp.to_binary() == ELASTIC_VECTOR
    ours = f.format_elastic_binary(0x1234, 0x5678, False)
    theirs = TraceParent.from_binary(ours)
    assert theirs is not None
    assert theirs.trace_id == "%032x" % 0x1234 and theirs.span_id == "%016x" % 0x5678
    assert not theirs.trace_options.recorded


@pytest.mark.parametrize(
    "data",
    [
        ELASTIC_VECTOR[:-1],
        ELASTIC_VECTOR + b"\x00",
        ELASTIC_VECTOR[:1] + b"\x05" + ELASTIC_VECTOR[2:],  # wrong field id
        b"\xff" + ELASTIC_VECTOR[1:],
        bytes(29),
    ],
)
def test_elastic_binary_invalid(data: bytes) -> None:
    assert f.parse_elastic_binary(data) is None
