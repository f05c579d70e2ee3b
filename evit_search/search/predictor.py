"""A throughput model fitted online to the study's measured candidates, so that a candidate
predicted well below the speed budget is not measured (nor trained).

Per host and backend (ratios to the reference measured on one machine do not transfer to
another exactly). The model is the cost of a forward pass as a sum of its parts: a candidate's
time per image relative to the reference's (1 / its throughput ratio) is a non-negative
combination of its FLOPs, its activations (tokens x width x sub-blocks, the memory traffic of
the element-wise and reshaping work) and its operator count (per-op overhead, heads run one after
another), plus a constant (stem, head). Non-negative least squares: a handful of physically
signed weights that a few measured candidates can pin down. On 34 random candidates of the
default space measured against M4 (2-core Intel Xeon VM, torch-cpu, batch 16, 224 px), fitted to 8 of
them: held-out median error 4 % and a margin of about x1.2, where this module's first version (a
ridge regression on twenty log features, its margin the 90th percentile of k-fold errors) had
17 % and x1.5, and skipped some feasible candidates while measuring about half the infeasible
ones. The reference itself is a data point (ratio 1 by definition), and so is every paper model
the study measured.

Its error is measured out of sample (leave one out on the measured candidates); a candidate is
skipped only when even its prediction raised by the margin -- a one-sided
:data:`CONFIDENCE` prediction bound on the log error, Student-t on the leave-one-out RMS error,
so it is wide with few candidates and narrows as they grow -- stays below the budget; candidates
near the boundary are always measured.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import t as student_t

import efficientvit

from .. import storage as st
from ..stats import spearman

WARMUP = 8  # measured candidates before any prediction is trusted
CONFIDENCE = 0.99  # one-sided: a feasible candidate is skipped wrongly about once in a hundred at most


def features(config: dict, cost: dict) -> list[float]:
    """FLOPs (M), activations (M values: tokens x width per sub-block, summed over blocks) and
    operator count of a candidate -- what a forward pass's time is a sum of."""
    cfg = efficientvit.EfficientViTConfig.from_dict(config)
    act = ops = 0.0
    for i, (s, r) in enumerate(zip(cfg.stages, cfg.stage_resolutions())):
        tokens = r * r
        # per block: 2N (DWConv, FFN) pairs around one attention; each FFN widens by its ratio
        act += s.depth * tokens * s.dim * (2 * s.n_ffn * (2 + s.ffn_ratio) + 3)
        ops += s.depth * (4 * s.n_ffn + 5 * s.num_heads)  # the heads of cascaded attention run in turn
    return [cost["flops_m"], act / 1e6, ops]


@dataclass
class ThroughputModel:
    """Fitted on ``n`` measured candidates (plus the reference); ``margin``: the multiplicative
    error bound; ``mdape`` and ``spearman``: leave-one-out, on the measured candidates."""

    weights: np.ndarray  # per feature (scaled), then the constant
    scale: np.ndarray
    n: int
    margin: float
    mdape: float
    spearman: float

    def predict(self, config: dict, cost: dict) -> float:
        return _predict(self.weights, self.scale, np.array([features(config, cost)]))[0]


def _fit(x: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Non-negative weights w (and constant) with 1 / ratio ~ (x / scale) . w + c."""
    a = np.hstack([x / scale, np.ones((len(x), 1))])
    w, _ = nnls(a, 1.0 / y)
    return w


def _predict(w: np.ndarray, scale: np.ndarray, x: np.ndarray) -> np.ndarray:
    rel_time = np.hstack([x / scale, np.ones((len(x), 1))]) @ w
    return 1.0 / np.maximum(rel_time, 1e-9)


def margin(log_errors: np.ndarray, confidence: float | None = None) -> float:
    """exp of a one-sided prediction bound (``confidence``, default :data:`CONFIDENCE`) on a new
    candidate's log error: Student-t with n - 1 degrees of freedom on the RMS of ``log_errors``
    (out of sample), times sqrt(1 + 1/n)."""
    confidence = CONFIDENCE if confidence is None else confidence
    n = len(log_errors)
    rms = float(np.sqrt(np.mean(np.square(log_errors))))
    return math.exp(float(student_t.ppf(confidence, max(1, n - 1))) * rms * math.sqrt(1.0 + 1.0 / n))


def training_rows(records: list[st.TrialRecord], backend: str, host: str | None = None) -> list[st.TrialRecord]:
    """Candidates measured on ``backend`` on this host, with a ratio to their session's reference."""
    host = host or socket.gethostname()
    return [r for r in records if r.config and r.cost and r.host == host
            and (r.throughput.get(backend) or {}).get("ratio_to_reference")]


def fit(records: list[st.TrialRecord], backend: str, host: str | None = None,
        reference: tuple[dict, dict] | None = None) -> ThroughputModel | None:
    """The model, or None before :data:`WARMUP` measured candidates. ``reference``: its (config,
    cost), a data point of ratio 1."""
    rows = training_rows(records, backend, host)
    if len(rows) < WARMUP:
        return None
    x = np.array([features(r.config, r.cost) for r in rows])
    y = np.array([r.throughput[backend]["ratio_to_reference"] for r in rows])
    if reference is not None and reference[0] and reference[1]:
        xa, ya = np.vstack([x, [features(*reference)]]), np.append(y, 1.0)
    else:
        xa, ya = x, y
    scale = np.maximum(np.abs(xa).mean(axis=0), 1e-12)
    pred = np.empty_like(y)
    for i in range(len(y)):  # leave one measured candidate out (the reference always stays in)
        keep = np.arange(len(ya)) != i
        pred[i] = _predict(_fit(xa[keep], ya[keep], scale), scale, x[i:i + 1])[0]
    err = np.log(pred / y)
    return ThroughputModel(_fit(xa, ya, scale), scale, len(rows), margin(err),
                           float(np.median(np.abs(pred / y - 1.0))), spearman(list(pred), list(y)))


def skip(model: ThroughputModel | None, predicted: float | None, min_ratio: float | None) -> bool:
    """Skip only beyond the margin: the prediction raised by the model's error is still below."""
    return model is not None and predicted is not None and min_ratio is not None and predicted * model.margin < min_ratio
