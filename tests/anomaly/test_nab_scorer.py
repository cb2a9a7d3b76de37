"""Our NAB scorer reproduces the published normalised scores of the shipped reference results."""

from __future__ import annotations

import json

import pytest

from benchmarks.nab import scorer

NAB = scorer.NAB_DIR


def test_nab_data_is_there() -> None:
    """The shared NAB folder is part of the workspace; its absence fails, never skips."""
    assert (NAB / "results").is_dir(), f"NAB data missing at {NAB} (expected shared/ beside the repository)"

# published in /work/shared/benchmarks/nab/SOURCE.md and results/final_results.json
PUBLISHED = {
    "numenta": {"standard": 70.10, "reward_low_FP_rate": 63.12, "reward_low_FN_rate": 74.32},
    "twitterADVec": {"standard": 47.06, "reward_low_FP_rate": 33.61, "reward_low_FN_rate": 53.50},
    "null": {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0},
}


@pytest.fixture(scope="module")
def profiles() -> list[scorer.Profile]:
    return scorer.load_profiles()


@pytest.mark.parametrize("detector", sorted(PUBLISHED))
def test_optimised_threshold_reproduces_published(detector: str, profiles: list[scorer.Profile]) -> None:
    files = scorer.load_results_dir(NAB / "results" / detector, detector)
    got = scorer.score_files(files, profiles)
    for name, want in PUBLISHED[detector].items():
        # our exhaustive threshold sweep can only match or beat NAB's local optimiser
        assert got[name].normalized == pytest.approx(want, abs=0.1), (name, got[name])
        assert got[name].normalized >= want - 0.01


def test_published_thresholds_reproduce_raw_scores(profiles: list[scorer.Profile]) -> None:
    """At the thresholds NAB's optimiser chose, our raw score equals NAB's to 1e-6."""
    thresholds = json.loads((NAB / "config" / "thresholds.json").read_text())["numenta"]
    files = scorer.load_results_dir(NAB / "results" / "numenta", "numenta")
    for p in profiles:
        res = scorer.result_at(scorer.sweep_corpus(files, p), p, thresholds[p.name]["threshold"])
        assert res.raw == pytest.approx(thresholds[p.name]["score"], abs=1e-6)
    final = json.loads((NAB / "results" / "final_results.json").read_text())["numenta"]
    for p in profiles:
        res = scorer.result_at(scorer.sweep_corpus(files, p), p, thresholds[p.name]["threshold"])
        assert res.normalized == pytest.approx(final[p.name], abs=1e-6)


def test_scaled_sigmoid_shape() -> None:
    import numpy as np

    v = scorer.scaled_sigmoid(np.array([-1.0, 0.0, 3.5]))
    assert v[0] == pytest.approx(0.98661, abs=1e-4)
    assert v[1] == pytest.approx(0.0)
    assert v[2] == -1.0


def test_probation_length() -> None:
    assert scorer.probation_length(4032) == 604
    assert scorer.probation_length(22695) == 750


def test_per_file_breakdown_sums_to_the_corpus_score(profiles: list[scorer.Profile]) -> None:
    """The per-file table (``--per-file``) splits the corpus raw score exactly, file by file."""
    files = scorer.load_results_dir(NAB / "results" / "numenta", "numenta")
    for p in profiles:
        best = scorer.best_result(scorer.sweep_corpus(files, p), p)
        parts = scorer.file_results(files, p, best.threshold)
        assert sum(r.raw for r in parts) == pytest.approx(best.raw, abs=1e-9)
        assert sum(r.windows for r in parts) == 116
        for r in parts:
            assert 0 <= r.detected <= r.windows
            # a file can score at most tp per window, and no file without windows scores above 0
            assert r.raw <= r.perfect + 1e-9
    # at a threshold above every score nothing is detected: each window costs fn, nothing else
    std = profiles[0]
    none = scorer.file_results(files, std, 2.0)
    assert all(r.detected == 0 and r.false_positives == 0 for r in none)
    assert sum(r.raw for r in none) == pytest.approx(-std.fn * 116)
    assert "windows missed" in scorer.file_table(sorted(scorer.load_windows()), files, std, 2.0)
