"""Which points of a batch are invalid, and why (first reason wins).

Invalid points are ignored and counted, never raised: a detector fed by a live
stream must not stop on one bad row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KIND_UNSET, KIND_COUNT, KIND_VALUE, KIND_RATIO = 0, 1, 2, 3
REASONS = ("", "not_finite", "out_of_order", "negative_count", "denominator_zero", "bad_ratio", "kind_changed", "duplicate")


def reasons(x: FloatArray, den: FloatArray, kind: npt.NDArray[np.int8], last_t: IntArray, t: int,
            idx: IntArray) -> npt.NDArray[np.int64]:
    """Reason code per point (index into :data:`REASONS`; 0: valid)."""
    is_ratio_in = ~np.isnan(den)
    with np.errstate(invalid="ignore"):
        conds = [
            ~np.isfinite(x),
            last_t >= t,
            (kind == KIND_COUNT) & (x < 0),
            is_ratio_in & ~(den > 0) & (x != 0),  # 0 of 0 attempts is a quiet bucket, not an error
            is_ratio_in & ((x < 0) | (x > den)),
            np.where(is_ratio_in, (kind != KIND_UNSET) & (kind != KIND_RATIO), kind == KIND_RATIO),
        ]
    if idx.size > 1 and not (idx[1:] > idx[:-1]).all():  # rising indices hold no duplicate
        _, first_pos = np.unique(idx, return_index=True)
        dup = np.ones(idx.size, dtype=bool)
        dup[first_pos] = False
        conds.append(dup)
    # nearly every batch is valid: the first-reason-wins selection only when something is not
    if not np.logical_or.reduce(conds).any():
        return np.zeros(idx.size, dtype=np.int64)
    out: npt.NDArray[np.int64] = np.select(conds, np.arange(1, len(conds) + 1), 0)
    return out


def new_kinds(x: FloatArray, den: FloatArray, kind: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """A series is a ratio when it comes with a denominator, a count while every value
    has been a whole number >= 0, and a value (amount) from the first one that is not."""
    whole = np.isfinite(x) & (x == np.round(x)) & (x >= 0)
    out: npt.NDArray[np.int8] = np.where(
        ~np.isnan(den), KIND_RATIO,
        np.where(kind == KIND_VALUE, KIND_VALUE, np.where(whole, np.where(kind == KIND_UNSET, KIND_COUNT, kind), KIND_VALUE)),
    ).astype(np.int8)
    return out
