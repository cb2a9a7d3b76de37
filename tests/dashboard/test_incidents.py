"""What "abnormal since" and "ongoing" mean, on hand-made score sequences (no store)."""

from __future__ import annotations

from commerce_observe.store import documents as d
from commerce_observe.store.incidents import anomaly_rows, shortlist


def points(series: str, scores: list[float | None]) -> list[tuple[str, int, float | None, dict[str, float]]]:
    return [(series, t * 60_000, s, {d.ANOMALY_ACTUAL: float(t)}) for t, s in enumerate(scores)]


def test_since_is_the_start_of_the_latest_abnormal_stretch() -> None:
    # abnormal at 1-2, quiet at 3, abnormal again at 4-6 with an unscored bucket at 5 (warming up: no break)
    [row] = anomaly_rows(points("orders:sku-1", [10, 80, 90, 5, 30, None, 60]), 10)
    assert (row.since_ms, row.at_ms, row.ongoing, row.score, row.peak) == (4 * 60_000, 6 * 60_000, True, 60.0, 60.0)
    assert (row.metric, row.entity, row.actual, row.severity) == ("orders", "sku-1", 6.0, "minor")


def test_a_stretch_followed_by_a_quiet_bucket_has_ended() -> None:
    [row] = anomaly_rows(points("payment_failures:card", [30, 99, 3]), 10)
    assert (row.since_ms, row.at_ms, row.ongoing, row.severity) == (0, 60_000, False, "critical")


def test_quiet_series_give_no_row_and_ongoing_ones_come_first() -> None:
    rows = anomaly_rows([*points("a", [99, 1]), *points("b", [1, 26]), *points("c", [1, 2, 3])], 10)
    assert [(r.series, r.ongoing) for r in rows] == [("b", True), ("a", False)]
    assert anomaly_rows(points("a", [99]), 0) == []


def test_shortlist_ranks_before_any_point_is_read() -> None:
    hot = [("ended", 60_000, 99.0), ("ongoing", 120_000, 30.0), ("also", 120_000, 50.0)]
    latest = {"ended": 180_000, "ongoing": 120_000, "also": 120_000}
    assert shortlist(hot, latest, 2) == ["also", "ongoing"]
    assert shortlist(hot, latest, 5) == ["also", "ongoing", "ended"]
