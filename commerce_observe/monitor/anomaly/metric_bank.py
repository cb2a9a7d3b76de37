"""The ``metric`` model of :class:`AnomalyDetector`: one :class:`MetricDetector` per series.

Machine metrics (latencies, CPU, queue depths, the NAB corpus) have no known bucket
size, no seasonality in the shop's sense and no count semantics, so the commerce
model's Poisson / binomial tests mean nothing for them. ``Settings(model="metric")``
routes every series of a detector through the contextual-novelty detector of
:mod:`.metric` instead, behind the same ``update`` / ``update_batch`` / ``Score``
API: what NAB measures is what ``commerce-observe anomaly --model metric`` runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt

from .metric import MetricDetector, MetricSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def metric_settings_to_dict(m: MetricSettings) -> dict[str, Any]:
    return asdict(m)


def metric_settings_from_dict(d: dict[str, Any]) -> MetricSettings:
    d = dict(d)
    d["ensemble"] = tuple(tuple((str(k), float(v)) for k, v in member) for member in d.get("ensemble", ()))
    return MetricSettings(**d)


class MetricBank:
    """Per-series metric detectors, indexed like the commerce model's bank."""

    def __init__(self, settings: MetricSettings) -> None:
        self.settings = settings
        self.detectors: list[MetricDetector] = []

    def add(self) -> int:
        self.detectors.append(MetricDetector(self.settings))
        return len(self.detectors) - 1

    def step(self, idx: IntArray, x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Scores 0..100 (NaN while a series learns) and the learning flags."""
        score = np.full(idx.size, np.nan)
        for i, j in enumerate(idx.tolist()):
            v = self.detectors[j].update(float(x[i]))
            if v is not None:
                score[i] = 100.0 * v
        return score, np.isnan(score)

    def state(self) -> list[dict[str, Any]]:
        return [d.state() for d in self.detectors]

    def restore(self, states: list[dict[str, Any]]) -> None:
        """Restore the detectors of series ``0..len(states)-1`` (already added)."""
        if len(states) != len(self.detectors):
            raise ValueError(f"metric model state has {len(states)} series, the detector {len(self.detectors)}")
        for d, st in zip(self.detectors, states):
            d.restore(st)
