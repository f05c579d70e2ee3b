"""``run --prefilter SCORE:FRACTION``: skip training the feasible candidates that a zero-cost
score puts in the worst FRACTION of the feasible ones measured so far. They are stored as
``screened`` with the score and the threshold, never trained and never scored as zero.

Pure decisions over stored records (no torch): the search engine scores each candidate with
:func:`evit_search.training.zerocost.score_config`, stores the result as the trial's
``zerocost`` attribute, and asks :func:`decide` before training.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import storage as st
from ..errors import UserError

PREFILTER_SCORES = ("synflow", "snip", "grad_norm", "naswot")  # every one is "higher is better"
MIN_HISTORY = 5  # no candidate is screened before this many feasible ones have a score


@dataclass(frozen=True)
class Prefilter:
    score: str
    fraction: float
    min_history: int = MIN_HISTORY

    def describe(self) -> str:
        return f"{self.score}:{self.fraction:g}"


@dataclass(frozen=True)
class Decision:
    screen: bool
    value: float | None
    threshold: float | None
    history: int  # feasible candidates with a score seen before this one
    reason: str


def parse_prefilter(text: str | None, flag: str = "--prefilter") -> Prefilter | None:
    """``SCORE:FRACTION`` (e.g. ``synflow:0.5``), or None when not given."""
    if not text:
        return None
    score, sep, frac = text.partition(":")
    if not sep or score not in PREFILTER_SCORES:
        raise UserError(f"{flag}={text!r}: give SCORE:FRACTION with SCORE one of {', '.join(PREFILTER_SCORES)}")
    try:
        fraction = float(frac)
    except ValueError:
        raise UserError(f"{flag}={text!r}: FRACTION {frac!r} is not a number") from None
    if not 0.0 < fraction < 1.0:
        raise UserError(f"{flag}={text!r}: FRACTION must be between 0 and 1 (exclusive)")
    return Prefilter(score, fraction)


def stored_score(rec: st.TrialRecord, score: str) -> float | None:
    """A trial's stored zero-cost score (None when it has none)."""
    return ((rec.attrs.get("zerocost") or {}).get("scores") or {}).get(score)


def feasible_history(records: list[st.TrialRecord], score: str, exclude: int | None = None) -> list[float]:
    """The score of every feasible candidate measured so far (trained or screened), one per
    architecture, in trial order."""
    seen, out = set(), []
    for r in sorted(records, key=lambda r: r.number):
        v = stored_score(r, score)
        if r.number == exclude or v is None or r.status not in ("ok", "screened") or r.arch_id in seen:
            continue
        seen.add(r.arch_id)
        out.append(float(v))
    return out


def decide(pf: Prefilter, value: float | None, history: list[float]) -> Decision:
    """Screen ``value`` when it is below the ``fraction`` quantile of ``history`` (the worst
    FRACTION, lower is worse). Never screens without a score or with fewer than
    ``min_history`` earlier values."""
    n = len(history)
    if value is None:
        return Decision(False, None, None, n, f"no {pf.score} score: trained")
    if n < pf.min_history:
        return Decision(False, value, None, n, f"only {n} feasible candidate(s) scored so far (< {pf.min_history}): trained")
    xs = sorted(history)
    k = int(pf.fraction * n)  # the k lowest values are the worst FRACTION
    threshold = xs[k - 1] if k >= 1 else None
    if threshold is not None and value <= threshold:
        return Decision(True, value, threshold, n,
                        f"zero-cost {pf.score} {value:.4g} is in the worst {100 * pf.fraction:g} % of the {n} feasible "
                        f"candidates scored so far (<= {threshold:.4g}): screened, not trained")
    return Decision(False, value, threshold, n, f"{pf.score} {value:.4g} above the worst {100 * pf.fraction:g} %: trained")
