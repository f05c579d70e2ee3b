"""A throughput model fitted online to the study's measured candidates, so that a candidate
predicted well below the speed budget is not measured (nor trained).

Per host and backend (ratios to the reference measured on one machine do not transfer to
another exactly), a ridge regression on log features the cost pass already has -- FLOPs,
params, and per stage tokens x width, depth, heads, key dim, N and the FFN ratio -- predicts the
log of the throughput ratio. Its error is measured out of sample (k-fold) on the same data; a
candidate is skipped only when even its prediction raised by that error (the 90th percentile of
the absolute log errors) stays below the budget, so candidates near the boundary are always
measured.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import efficientvit

from .. import storage as st
from ..stats import spearman

WARMUP = 8  # measured candidates before any prediction is trusted
MARGIN_QUANTILE = 0.9


def features(config: dict, cost: dict) -> list[float]:
    cfg = efficientvit.EfficientViTConfig.from_dict(config)
    out = [math.log(cost["flops_m"]), math.log(cost["params_m"])]
    for i, (s, r) in enumerate(zip(cfg.stages, cfg.stage_resolutions())):
        out += [math.log(r * r * s.dim), s.depth, s.num_heads, cfg.qk_dim(i), s.n_ffn, s.ffn_ratio]
    return out


@dataclass
class ThroughputModel:
    """Fitted on ``n`` candidates; ``margin``: the multiplicative error bound (exp of the 90th
    percentile of out-of-sample absolute log errors); ``mdape`` and ``spearman`` out of sample."""

    pipeline: object
    n: int
    margin: float
    mdape: float
    spearman: float

    def predict(self, config: dict, cost: dict) -> float:
        return float(math.exp(self.pipeline.predict(np.array([features(config, cost)]))[0]))


def _pipeline():
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def training_rows(records: list[st.TrialRecord], backend: str, host: str | None = None) -> list[st.TrialRecord]:
    """Candidates measured on ``backend`` on this host, with a ratio to their session's reference."""
    host = host or socket.gethostname()
    return [r for r in records if r.config and r.cost and r.host == host
            and (r.throughput.get(backend) or {}).get("ratio_to_reference")]


def fit(records: list[st.TrialRecord], backend: str, host: str | None = None) -> ThroughputModel | None:
    """The model, or None before :data:`WARMUP` measured candidates."""
    rows = training_rows(records, backend, host)
    if len(rows) < WARMUP:
        return None
    x = np.array([features(r.config, r.cost) for r in rows])
    y = np.log([r.throughput[backend]["ratio_to_reference"] for r in rows])
    pred = np.empty_like(y)
    for train_idx, test_idx in KFold(n_splits=min(5, len(rows)), shuffle=True, random_state=0).split(x):
        pred[test_idx] = _pipeline().fit(x[train_idx], y[train_idx]).predict(x[test_idx])
    err = np.abs(pred - y)
    return ThroughputModel(_pipeline().fit(x, y), len(rows), float(math.exp(np.quantile(err, MARGIN_QUANTILE))),
                           float(np.median(np.abs(np.exp(pred - y) - 1.0))), spearman(list(pred), list(y)))


def skip(model: ThroughputModel | None, predicted: float | None, min_ratio: float | None) -> bool:
    """Skip only beyond the margin: the prediction raised by the model's error is still below."""
    return model is not None and predicted is not None and min_ratio is not None and predicted * model.margin < min_ratio
