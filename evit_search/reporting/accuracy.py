"""How sure an accuracy is: every candidate's accuracy beside the reference's, as a difference
with a 95 % interval from the seed noise measured on the reference (``run --ref-seeds``), and
the verdict it allows (better / worse / indistinguishable).

A candidate is trained once; the reference K times. Assuming both share the reference's seed
SD s (K - 1 degrees of freedom), ``candidate - mean(reference)`` has standard error
``s * sqrt(1 + 1/K)`` and two candidates' difference ``s * sqrt(2)``; the intervals use Student's
t. With K = 3 the t quantile is 4.30: short proxy runs separate only designs far apart, and the
tool says so rather than rank noise. The half widths are stored with the reference when it is
trained (so the TUI needs no scipy); older studies get them computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import storage as st
from ..stats import Delta, half_widths


@dataclass(frozen=True)
class ReferenceNoise:
    mean: float | None
    sd: float | None
    n: int
    delta_half: float | None  # 95 % half width of (one candidate run - the reference's mean)
    pair_half: float | None  # 95 % half width of (one candidate run - another)

    def describe(self) -> str:
        if self.mean is None:
            return "reference not trained"
        if self.sd is None:
            return f"reference {self.mean:.2f} % (1 seed: seed noise not measured)"
        return f"reference {self.mean:.2f} ± {self.sd:.2f} % (mean ± SD over {self.n} seeds)"


def reference_noise(attrs: dict) -> ReferenceNoise:
    ref = attrs.get("reference_result") or {}
    n = int(ref.get("n") or (1 if ref.get("top1") is not None else 0))
    sd = ref.get("top1_sd")
    dh, ph = ref.get("delta_ci_half"), ref.get("pair_ci_half")
    if sd is not None and (dh is None or ph is None):
        half = half_widths(sd, n)
        dh, ph = half["delta"], half["pair"]
    return ReferenceNoise(ref.get("top1"), sd, n, dh, ph)


def _delta(d: float, half: float | None) -> Delta:
    return Delta(d, None if half is None else d - half, None if half is None else d + half, 0.95)


def delta_to_reference(r: st.TrialRecord, noise: ReferenceNoise) -> Delta | None:
    """The trial's validation top-1 minus the reference's mean, with its 95 % interval (only for
    candidates trained in full: a rung's accuracy is not comparable)."""
    if r.accuracy is None or noise.mean is None or (r.fidelity or 1.0) < 1.0:
        return None
    return _delta(r.accuracy - noise.mean, noise.delta_half)


def indistinguishable_from(front: list[st.TrialRecord], noise: ReferenceNoise) -> dict[int, list[int]]:
    """For each front member, the other members whose accuracy it cannot be told apart from
    (their difference's 95 % interval contains 0, both trained once); none without measured noise."""
    if noise.pair_half is None:
        return {a.number: [] for a in front}
    return {a.number: [b.number for b in front if b is not a and a.accuracy is not None and b.accuracy is not None
                       and _delta(a.accuracy - b.accuracy, noise.pair_half).verdict == "indistinguishable"]
            for a in front}


def delta_text(d: Delta | None, short: bool = False) -> str:
    """``+0.42 [-1.10, +1.94] indistinguishable`` (``short``: ``+0.42 ≈``, ``↑``, ``↓``); ``-`` without accuracy."""
    if d is None:
        return "-"
    if short:
        if d.low is None:
            return f"{d.delta:+.2f}"
        return f"{d.delta:+.2f} " + {"better": "↑", "worse": "↓", "indistinguishable": "≈"}[d.verdict]
    if d.low is None:
        return f"{d.delta:+.2f} (noise not measured)"
    return f"{d.delta:+.2f} [{d.low:+.2f}, {d.high:+.2f}] {d.verdict}"
