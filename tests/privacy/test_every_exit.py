"""Nothing sensitive leaves the process, by any exit: a property test over the wire bytes.

Generated card numbers (any separator), Korean and international phone numbers,
e-mail addresses (internationalised too) and URL credentials are sent through every
way out at once, into receivers that keep every byte: a recording HTTP server as the
Zipkin endpoint, the APM intake stand-in (every event validated against the intake v2
schemas), the file exporter, a log handler configured after install, the SQLite audit
sink and the SQLite event store, plus the library's own warnings. Each value travels
as a span name, a span-event name, an attribute, a URL (path, percent- and
``+``-encoded query, ``requests``' ``params=``), a form body, an exception message,
a log message and ``extra``, an audit record's error text and ``ce_*`` ids, and an
event-store id. Then every byte that left is searched for the value in every
encoding it could take. The same runs check that order ids, SKUs, ISO timestamps,
epoch milliseconds and amounts arrive unchanged.
"""

from __future__ import annotations

import io
import json
import logging
import random
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import commerce_observe
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.export.file import FileExporter
from commerce_observe.agent.current import hub
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.agent.privacy import luhn_ok
from tests.support.apm_intake import IntakeReceiver
from tests.support.recorder import Recorder

# --- what must not leave ----------------------------------------------------------------------


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "37", "6011", "35"]))
    length = 15 if prefix == "37" else 16
    body = prefix + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=length - len(prefix) - 1,
                                          max_size=length - len(prefix) - 1)))
    digits = body + next(d for d in "0123456789" if luhn_ok(body + d))
    sep = draw(st.sampled_from(["", " ", "-", ".", "_", "/"]))
    if not sep:
        return digits
    groups = [digits[i:i + 4] for i in range(0, len(digits), 4)]
    return sep.join(groups)


def _digits(draw: st.DrawFn, n: int) -> str:
    return "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=n, max_size=n)))


@st.composite
def phones(draw: st.DrawFn) -> str:
    a, b = _digits(draw, 4), _digits(draw, 4)
    shape = draw(st.sampled_from(["010-{a}-{b}", "010.{a}.{b}", "010{a}{b}", "02-{a}-{b}", "+82 10 {a} {b}",
                                  "+82-10-{a}-{b}", "+44 20 {a} {b}", "+1 (555) {c}-{b}", "+49 170 {a}{d}",
                                  "0082 10 {a} {b}", "(555) {c}-{b}", "555-{c}-{b}"]))
    return shape.format(a=a, b=b, c=_digits(draw, 3), d=_digits(draw, 3))


LOCAL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789._+éüßçñ"), min_size=1, max_size=12).filter(
    lambda s: s[0] not in "._+" and s[-1] not in "._+" and ".." not in s)
LABEL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzäöü用户例子"), min_size=2, max_size=10)


@st.composite
def emails(draw: st.DrawFn) -> str:
    return f"{draw(LOCAL)}@{draw(LABEL)}.{draw(st.sampled_from(['com', 'de', 'co.kr', 'example', '广告']))}"


@st.composite
def credentials(draw: st.DrawFn) -> str:
    """The secret is the password (long enough to be unique in the bytes)."""
    return "pw" + "".join(draw(st.lists(st.sampled_from("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"),
                                         min_size=10, max_size=16)))


SECRETS = st.one_of(cards().map(lambda v: ("card", v)), phones().map(lambda v: ("phone", v)),
                    emails().map(lambda v: ("email", v)), credentials().map(lambda v: ("credentials", v)))


@st.composite
def benign(draw: st.DrawFn) -> dict[str, str]:
    ms = draw(st.integers(1_500_000_000_000, 2_000_000_000_000))
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
    return {"order.id": f"ord-{draw(st.integers(0, 999_999)):06d}", "sku": f"sku-{draw(st.integers(0, 9999)):04d}",
            "when": when, "epoch_ms": str(ms), "amount": f"{draw(st.integers(0, 10**7)) / 100:.2f}"}


# --- where it could show up -------------------------------------------------------------------


def needles(kind: str, value: str) -> set[bytes]:
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1]}
    if kind in ("card", "phone"):
        digits = "".join(c for c in value if c.isdigit())
        forms.add(digits)
    return {f.encode() for f in forms if len(f) >= 6}


class Exits:
    """The installed runtime with every exit wired to something that keeps the bytes."""

    def __init__(self, tmp: Path, zipkin: Recorder, apm: IntakeReceiver) -> None:
        self.tmp, self.zipkin, self.apm = tmp, zipkin, apm
        self.file = tmp / "traces.json"
        self.audit_db, self.store_db = tmp / "audit.sqlite", tmp / "events.db"
        runtime = commerce_observe.install(
            env={}, strict=True, service_name="privacy-exits", zipkin_endpoint=f"{zipkin.url}/api/v2/spans",
            apm_server_url=apm.url, exporters=[FileExporter(str(self.file))], event_store=f"sqlite:{self.store_db}",
            audit_sink="sqlite", audit_path=str(self.audit_db), spool_dir=str(tmp / "spool"), schedule_delay_ms=20)
        assert runtime is not None
        self.runtime = runtime
        self.log = io.StringIO()
        self.handler = logging.StreamHandler(self.log)  # configured after install, as main() would
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(customer)s",
                                                    defaults={"customer": "-"}))
        self.app_log = logging.getLogger("shop.privacy")
        self.app_log.addHandler(self.handler)
        logging.getLogger("commerce_observe").addHandler(self.handler)
        self.tracer = trace.get_tracer("shop")

    def close(self) -> None:
        self.app_log.removeHandler(self.handler)
        logging.getLogger("commerce_observe").removeHandler(self.handler)
        commerce_observe.shutdown()

    def send(self, n: int, kind: str, secret: str, ok: dict[str, str]) -> None:
        # a password is sensitive where it is one: in a URL's user-info
        value = f"https://svc:{secret}@psp.example/pay" if kind == "credentials" else secret
        enc, plus = quote(value, safe=""), quote_plus(value)
        with self.tracer.start_as_current_span(f"GET /customers/{value}", attributes={
            "url.full": f"https://shop.example/search?q={plus}&email={enc}&page=2",
            "url.path": f"/customers/{enc}/orders", "url.query": urlencode({"q": value, "sku": ok["sku"]}),
            "http.request.body": urlencode({"card": value, "note": "gift"}), "note": f"customer said {value}",
            "db.statement": f"SELECT * FROM customers WHERE contact = '{value}'",
            "endpoint": f"https://svc:{value}@psp.example/pay", **ok,
        }) as span:
            span.add_event(f"looked up {value}", {"detail": value})
            try:
                raise ValueError(f"payment for {value} declined")
            except ValueError as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
            requests.get(f"{self.zipkin.url}/lookup", params={"q": value, "order": ok["order.id"]}, timeout=10)
            self.app_log.warning("customer %s asked for a refund", value, extra={"customer": value})
            stats.warn(f"privacy.test.{n}", "backend answered %s", f"https://user:{value}@api.example/v1")
            # an id that is a card or phone number (ids allow letters, digits and ._:/-)
            ident = value if all(c.isascii() and (c.isalnum() or c in "._:/-") for c in value) else None
            if ident is None and kind == "card":
                ident = "".join(c for c in value if c.isdigit())
            elif ident is None and value.startswith("+82"):
                ident = "0" + "".join(c for c in value if c.isdigit())[2:]  # the Korean national form
            if ident is not None and kind != "credentials":
                commerce_observe.order_created(ident, amount=Decimal(ok["amount"]), currency="EUR",
                                               items=[(ok["sku"], 1, Decimal(ok["amount"]))])
            commerce_observe.order_created(ok["order.id"], amount=Decimal(ok["amount"]), currency="EUR",
                                           items=[(ok["sku"], 2, Decimal(ok["amount"]))])
            ctx = span.get_span_context()
            hub().emit(MessageFact(Stage.HANDLE_FAILED, "kafka", f"payments.{value}", value, f"shop.{value}",
                                   f"/shop/{value}", n, format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"),
                                   time.time_ns(), consumer_group="billing", order_id=value,
                                   error=f"handler failed for {value}"))

    def flush(self) -> None:
        assert self.runtime.flush(20_000)
        for detach in self.runtime.detachers:  # the event-store batcher
            flush = getattr(detach, "flush", None)
            if flush is not None:
                assert flush(20.0)

    def bytes_that_left(self) -> dict[str, bytes]:
        def files(*paths: Path) -> bytes:
            return b"".join(p.read_bytes() for p in paths if p.is_file())

        traces = self.tmp / "traces.traces"
        return {
            "zipkin": b"\n".join(self.zipkin.bodies),
            "elastic apm": b"\n".join(self.apm.bodies),
            "file": files(self.file, *(sorted(traces.iterdir()) if traces.is_dir() else [])),
            "logs": self.log.getvalue().encode(),
            "audit": files(self.audit_db, Path(f"{self.audit_db}-wal"), Path(f"{self.audit_db}-journal")),
            "store": files(self.store_db, Path(f"{self.store_db}-wal"), Path(f"{self.store_db}-journal")),
        }


def test_nothing_sensitive_leaves_by_any_exit(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("exits")
    with Recorder() as zipkin, IntakeReceiver() as apm:
        exits = Exits(tmp, zipkin, apm)
        sent: list[tuple[str, str]] = []
        kept: list[dict[str, str]] = []
        try:
            @settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(st.lists(SECRETS, min_size=1, max_size=3), benign())
            def through_every_exit(secrets: list[tuple[str, str]], ok: dict[str, str]) -> None:
                # Hypothesis seeds `random` alike for every example, and trace and event ids
                # come from it: fresh ids per example, or the store would see duplicates.
                random.seed(len(sent) * 7919 + time.monotonic_ns())
                for kind, value in secrets:
                    exits.send(len(sent), kind, value, ok)
                    sent.append((kind, value))
                kept.append(ok)
                exits.flush()
                left = exits.bytes_that_left()
                for kind, value in secrets:
                    for exit_name, data in left.items():
                        for needle in needles(kind, value):
                            at = data.find(needle)
                            assert at < 0, (f"{kind} {value!r} left by {exit_name} as {needle!r}: "
                                            f"{data[max(0, at - 150):at + 80]!r}")

            through_every_exit()
            left = exits.bytes_that_left()
        finally:
            exits.close()
    assert all(left.values()), {k: len(v) for k, v in left.items()}  # every exit carried something
    assert not apm.problems(), apm.problems()[:5]
    # what is not sensitive arrives as it was sent
    for ok in kept:
        for key in ("order.id", "sku", "when", "epoch_ms", "amount"):
            assert ok[key].encode() in left["zipkin"] and ok[key].encode() in left["file"], (key, ok[key])
    with sqlite3.connect(exits.store_db) as db:
        stored = {row[0] for row in db.execute("SELECT order_id FROM docs")}
        products = {row[0] for row in db.execute("SELECT product_id FROM docs WHERE product_id IS NOT NULL")}
    missing = [ok["order.id"] for ok in kept if ok["order.id"] not in stored]
    assert not missing, (missing[:5], sorted(stored)[:20])
    assert {ok["sku"] for ok in kept} <= products
    assert stats.get("privacy.masked.card") and stats.get("privacy.masked.phone") and stats.get("privacy.masked.email")
    print(f"{len(sent)} sensitive values sent through {len(left)} exits; none left")
