"""Percentiles for benchmark samples (nearest-rank: a reported value was observed)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(samples: Sequence[float], prefix: str = "") -> dict[str, float]:
    """p50/p90/p99/max of samples in seconds, as milliseconds rounded to microseconds."""
    return {
        f"{prefix}p50_ms": round(percentile(samples, 50) * 1000, 3),
        f"{prefix}p90_ms": round(percentile(samples, 90) * 1000, 3),
        f"{prefix}p99_ms": round(percentile(samples, 99) * 1000, 3),
        f"{prefix}max_ms": round(max(samples) * 1000, 3),
    }
