"""Engine: what fires, de-duplication, grouping of bursts, resolving after quiet buckets."""

from __future__ import annotations

from commerce_observe.monitor.alerts import AlertEngine, AnomalyRule, AuditRule, FailureRatioRule, Kind, Notification, Status
from commerce_observe.monitor.audit.findings import Links
from tests.alerts.helpers import MIN, T0, FakeScore, finding


def engine(*rules: object, group_min: int = 5) -> tuple[AlertEngine, list[Notification]]:
    out: list[Notification] = []
    links = Links("http://zipkin:9411", "http://kibana:5601")
    return AlertEngine(rules, out.append, bucket_s=60, group_min=group_min, links=links), out  # type: ignore[arg-type]


def test_anomaly_rule_threshold_glob_and_direction() -> None:
    e, out = engine(AnomalyRule("drops", series="orders:sku-*", threshold=60, direction="drop"))
    e.observe_score(FakeScore("orders:sku-1", T0, 80, actual=0, expected=12))  # fires
    e.observe_score(FakeScore("orders:sku-2", T0, 59, actual=0, expected=12))  # under threshold
    e.observe_score(FakeScore("orders:sku-3", T0, 95, actual=40, expected=12))  # a spike, not a drop
    e.observe_score(FakeScore("revenue:EUR", T0, 99, actual=0, expected=12))  # other series
    e.observe_score(FakeScore("orders:sku-4", T0, None))  # warming up
    e.close_bucket()
    assert [n.kind for n in out] == [Kind.FIRING]
    a = out[0].alerts[0]
    assert (a.title, a.where, a.severity, a.since) == ("orders dropped", (("product", "sku-1"),), "critical", T0)
    assert a.measure == "anomaly score 80/100 (0 vs 12.0 expected)"


def test_same_key_fires_once_while_active_then_resolves_after_quiet_buckets() -> None:
    e, out = engine(AnomalyRule("orders", series="orders:*", threshold=50, resolve_after=3))
    for i in range(5):  # five breaching buckets: one notification
        e.observe_score(FakeScore("orders:sku-1", T0 + i * MIN, 70 + i))
    e.observe_score(FakeScore("orders:sku-1", T0 + 5 * MIN, 10))
    e.observe_score(FakeScore("orders:sku-1", T0 + 6 * MIN, 10))
    assert [n.kind for n in out] == [Kind.FIRING]
    assert e.active[0].since == T0 and e.active[0].value == 74  # latest numbers, incident start kept
    e.observe_score(FakeScore("orders:sku-1", T0 + 7 * MIN, 10))  # closes the third quiet bucket
    e.observe_score(FakeScore("orders:sku-1", T0 + 8 * MIN, 10))
    assert [n.kind for n in out] == [Kind.FIRING, Kind.RESOLVED]
    r = out[1].alerts[0]
    assert r.status is Status.RESOLVED and r.since == T0 and r.ended == T0 + 8 * MIN
    assert e.active == []


def test_a_breach_during_the_quiet_period_keeps_it_one_incident() -> None:
    e, out = engine(AnomalyRule("orders", threshold=50, resolve_after=2))
    for i, score in enumerate([80, 10, 80, 10, 10, 10]):
        e.observe_score(FakeScore("orders:a", T0 + i * MIN, score))
    e.flush()
    assert [n.kind for n in out] == [Kind.FIRING, Kind.RESOLVED]


def test_burst_of_forty_products_is_one_grouped_notification_and_one_grouped_resolve() -> None:
    e, out = engine(AnomalyRule("orders", series="orders:*", threshold=75, direction="drop", resolve_after=1))
    for p in range(40):
        e.observe_score(FakeScore(f"orders:sku-{p}", T0, 90, actual=0, expected=20))
    e.observe_score(FakeScore("orders:sku-0", T0 + MIN, 0))  # the next minute: quiet
    e.flush()
    assert [n.kind for n in out] == [Kind.GROUP, Kind.GROUP_RESOLVED]
    assert len(out[0].alerts) == 40 and "app or site outage?" in out[0].title
    assert out[0].title.startswith("40 x orders dropped")
    assert {a.where[0][1] for a in out[1].alerts} == {f"sku-{p}" for p in range(40)}


def test_below_group_min_each_alert_is_its_own_notification() -> None:
    e, out = engine(AnomalyRule("orders", threshold=75), group_min=5)
    for p in range(4):
        e.observe_score(FakeScore(f"orders:sku-{p}", T0, 90))
    e.close_bucket()
    assert [n.kind for n in out] == [Kind.FIRING] * 4


def test_failure_ratio_needs_minimum_attempts_and_is_per_method() -> None:
    e, out = engine(FailureRatioRule("pay", method="*", threshold=0.1, min_attempts=50))
    e.observe_payments(T0, "card", 9, 10)  # 90% but only 10 attempts: not judged
    e.observe_payments(T0, "paypal", 4, 100)  # 4%
    e.observe_payments(T0, "klarna", 30, 100)  # 30%
    e.close_bucket()
    assert len(out) == 1
    a = out[0].alerts[0]
    assert a.where == (("payment method", "klarna"),) and a.severity == "critical" and a.value == 0.3
    assert "30.0% failed (30 of 100 attempts" in a.measure


def test_audit_findings_grouped_per_kind_topic_and_group_with_trace_links() -> None:
    e, out = engine(AuditRule("lost", kinds=("LOST", "DUPLICATE"), topic="orders*", max_links=1))
    found = [finding("LOST", "e1", trace="a" * 32), finding("LOST", "e2", trace="b" * 32, order="o-2"),
             finding("DUPLICATE", "e3"), finding("LATE", "e4"), finding("LOST", "e5", topic="payments")]
    e.observe_findings(found, at=T0)
    e.close_bucket()
    assert [n.alerts[0].title for n in out] == ["events lost", "events duplicated"]
    lost = out[0].alerts[0]
    assert lost.measure == "2 events lost" and lost.severity == "critical"
    assert dict(lost.where) == {"topic": "orders", "consumer group": "billing", "event type": "order.created"}
    assert "event e2 order=o-2" in lost.details
    assert ("zipkin trace " + "a" * 32, "http://zipkin:9411/zipkin/traces/" + "a" * 32) in lost.links
    assert ("kibana trace " + "a" * 32, "http://kibana:5601/app/apm/link-to/trace/" + "a" * 32) in lost.links


def test_audit_min_count_and_findings_bucketed_by_publication_time() -> None:
    e, out = engine(AuditRule("late", kinds=("LATE",), min_count=2, resolve_after=1))
    e.observe_findings([finding("LATE", "e1", at=T0), finding("LATE", "e2", at=T0 + MIN), finding("LATE", "e3", at=T0 + MIN)])
    e.flush()
    assert len(out) == 1 and out[0].alerts[0].since == T0 + MIN and out[0].alerts[0].value == 2


def test_a_failing_sink_is_counted_and_does_not_stop_detection() -> None:
    from commerce_observe._internal.selfstats import stats

    def broken(n: Notification) -> None:
        raise RuntimeError("down")

    strict, stats.strict = stats.strict, False
    try:
        before = stats.get("alerts.sink_error")
        e = AlertEngine([AnomalyRule("o", threshold=50)], broken, bucket_s=60)
        e.observe_score(FakeScore("orders:a", T0, 90))
        e.close_bucket()
        assert stats.get("alerts.sink_error") == before + 1 and len(e.active) == 1
    finally:
        stats.strict = strict


def test_a_long_gap_resolves_and_jumps_without_closing_every_empty_bucket() -> None:
    e, out = engine(AnomalyRule("o", threshold=50, resolve_after=2))
    e.observe_score(FakeScore("orders:a", T0, 90))
    e.observe_score(FakeScore("orders:a", T0 + 100_000 * MIN, 10))
    assert [n.kind for n in out] == [Kind.FIRING, Kind.RESOLVED]
    assert out[1].alerts[0].ended == T0 + 3 * MIN
