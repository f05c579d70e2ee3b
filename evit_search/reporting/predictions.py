"""How well the throughput model predicted: its predictions, made before each candidate was
measured, against the measurements (for show and report)."""

from __future__ import annotations

import statistics

from .. import storage as st
from ..stats import spearman


def prediction_error(records: list[st.TrialRecord], backend: str) -> dict | None:
    """How the predictions made before measuring compare with the measurements (median absolute
    percentage error and Spearman rank correlation), over the candidates that have both."""
    pairs = [(r.attrs["predicted_ratio"], r.throughput[backend]["ratio_to_reference"]) for r in records
             if r.attrs.get("predicted_ratio") and (r.throughput.get(backend) or {}).get("ratio_to_reference")]
    if len(pairs) < 2:
        return None
    return {"n": len(pairs), "mdape": statistics.median(abs(p / m - 1.0) for p, m in pairs),
            "spearman": spearman([p for p, _ in pairs], [m for _, m in pairs])}
