"""Notifiers against real receivers on 127.0.0.1: an HTTP webhook receiver and Exim (Debian's MTA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commerce_observe.monitor.alerts import (AlertEngine, AuditRule, DeliveryError, Dispatcher, EmailNotifier, ManualClock,
                                     SlackNotifier, WebhookNotifier)
from commerce_observe.monitor.audit.findings import Links
from tests.alerts.helpers import T0, finding
from tests.alerts.receivers import Exim, HttpReceiver
from testbed.base import free_port
from tests.support.waiting import wait_for
from tests.alerts.test_delivery import note


@pytest.fixture(scope="module")
def exim() -> Iterator[Exim]:
    mta = Exim().start()
    yield mta
    mta.stop()


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


def run(notifiers: list[object]) -> Dispatcher:
    """Two lost events with traces through the engine, delivered to ``notifiers``."""
    d = Dispatcher(notifiers, ManualClock(), throttle_max=None)  # type: ignore[arg-type]
    e = AlertEngine([AuditRule("lost-orders", kinds=("LOST",))], d.submit, bucket_s=60,
                    links=Links("http://zipkin.test:9411", "http://kibana.test:5601"))
    e.observe_findings([finding("LOST", "evt-1", trace="a" * 32, order="o-1"), finding("LOST", "evt-2", trace="b" * 32, order="o-2")], at=T0)
    e.close_bucket()
    d.pump()
    return d


def test_webhook_posts_the_full_alert_as_json(receiver: HttpReceiver) -> None:
    d = run([WebhookNotifier(receiver.url)])
    assert d.channels[0].counts["sent"] == 1
    (body,) = receiver.bodies()
    assert body["kind"] == "firing" and body["severity"] == "critical" and len(body["id"]) == 20
    (alert,) = body["alerts"]
    assert alert["title"] == "events lost" and alert["measure"] == "2 events lost" and alert["value"] == 2
    assert alert["where"] == {"topic": "orders", "consumer group": "billing", "event type": "order.created"}
    assert alert["since"] == T0.isoformat() and alert["status"] == "firing"
    assert {"label": "zipkin trace " + "a" * 32, "url": "http://zipkin.test:9411/zipkin/traces/" + "a" * 32} in alert["links"]
    assert alert["details"] == ["event evt-1 order=o-1", "event evt-2 order=o-2"]


def test_slack_payload_has_text_and_blocks(receiver: HttpReceiver) -> None:
    run([SlackNotifier(receiver.url)])
    (body,) = receiver.bodies()
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "[commerce-observe CRITICAL] events lost - topic orders, consumer group billing, event type order.created"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    section = body["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "2 events lost" in section["text"]
    assert f"<http://kibana.test:5601/app/apm/link-to/trace/{'b' * 32}|kibana trace {'b' * 32}>" in section["text"]


def test_email_through_exim_has_plain_text_and_html(exim: Exim) -> None:
    n = EmailNotifier("127.0.0.1", exim.port, "alerts@shop.test", ["oncall@shop.test", "boss@shop.test"])
    d = run([n])
    assert d.channels[0].counts["sent"] == 1, d.channels[0].last_error
    wait_for("exim to deliver to both recipients", lambda: len(exim.messages()) >= 2)
    msgs = exim.messages()
    assert sorted(m["Envelope-to"] for m in msgs) == ["boss@shop.test", "oncall@shop.test"]
    m = msgs[0]
    assert m["Subject"].startswith("[commerce-observe CRITICAL] events lost - topic orders")
    assert "by alerts.test with esmtp (Exim" in m["Received"]
    parts = {p.get_content_type(): bytes(p.get_payload(decode=True)).decode() for p in m.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "2 events lost" in parts["text/plain"] and "event evt-1 order=o-1" in parts["text/plain"]
    assert "zipkin trace " + "a" * 32 + ": http://zipkin.test:9411/zipkin/traces/" + "a" * 32 in parts["text/plain"]
    assert f'<a href="http://zipkin.test:9411/zipkin/traces/{"a" * 32}">' in parts["text/html"]
    assert len(m["X-Commerce-Observe-Notification"]) == 20  # the id receivers de-duplicate on


def test_email_recipient_refused_by_the_mta_is_permanent(exim: Exim) -> None:
    n = EmailNotifier("127.0.0.1", exim.port, "alerts@shop.test", ["refuse-me@shop.test"])
    d = run([n])
    assert d.channels[0].counts["gave_up"] == 1 and "refused" in (d.channels[0].last_error or "")


def test_email_while_the_mta_is_down_is_retried() -> None:
    n = EmailNotifier("127.0.0.1", free_port(), "alerts@shop.test", ["oncall@shop.test"], timeout_s=2)
    with pytest.raises(DeliveryError) as err:
        n.send(note(0))
    assert not err.value.permanent  # connection refused: try again later
