"""Latency summaries: percentiles and a compact CDF from raw samples (ns).

numpy is used when present (it comes with matplotlib in the ``bench``
extra); the plain-Python path gives the same numbers, only slower.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Sequence

try:
    import numpy as _np
except ImportError:          # pragma: no cover - numpy comes with the bench extra
    _np = None

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# Quantiles kept for the CDF plot: dense in the tail.
_CDF_POINTS = tuple(sorted({*(i / 100 for i in range(0, 100, 2)), 0.95, 0.97, 0.98, 0.99, 0.995, 0.999,
                            0.9995, 0.9999, 1.0}))


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency in microseconds."""
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    cdf: tuple[tuple[float, float], ...]      # (quantile, microseconds)

    def as_dict(self) -> dict:
        return {"count": self.count, "mean_us": round(self.mean, 1), "p50_us": round(self.p50, 1),
                "p90_us": round(self.p90, 1), "p99_us": round(self.p99, 1), "p99.9_us": round(self.p999, 1),
                "max_us": round(self.max, 1), "cdf": [[q, round(v, 1)] for q, v in self.cdf]}


EMPTY = Latency(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ())


def summarise(chunks: Sequence[bytes]) -> Latency:
    """Summarise raw samples: each chunk is an ``array('q')`` of nanoseconds as bytes."""
    if _np is not None:
        parts = [_np.frombuffer(c, dtype=_np.int64) for c in chunks if c]
        if not parts:
            return EMPTY
        ns = _np.sort(_np.concatenate(parts))
        n = len(ns)

        def at(q: float) -> float:
            return float(ns[min(n - 1, int(q * n))]) / 1000.0
        mean = float(ns.mean()) / 1000.0
    else:
        values: list[int] = []
        for c in chunks:
            a = array("q")
            a.frombytes(c)
            values.extend(a)
        if not values:
            return EMPTY
        values.sort()
        n = len(values)

        def at(q: float) -> float:
            return values[min(n - 1, int(q * n))] / 1000.0
        mean = sum(values) / n / 1000.0
    return Latency(n, mean, at(0.50), at(0.90), at(0.99), at(0.999), at(1.0),
                   tuple((q, at(q)) for q in _CDF_POINTS))
