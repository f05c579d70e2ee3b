"""How sure an accuracy is: every candidate's accuracy beside the reference's, as a difference
with a 95 % interval from the seed noise measured on the reference (``run --ref-seeds``), and
the verdict it allows (better / worse / indistinguishable).

A candidate is trained once; the reference K times. Assuming both share the reference's seed
SD s (K - 1 degrees of freedom), ``candidate - mean(reference)`` has standard error
``s * sqrt(1 + 1/K)``; the interval uses Student's t. With K = 3 the t quantile is 4.30: short
proxy runs separate only designs far apart, and the tool says so rather than rank noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import storage as st
from ..stats import Delta, delta_interval


@dataclass(frozen=True)
class ReferenceNoise:
    mean: float | None
    sd: float | None
    n: int

    @property
    def df(self) -> int:
        return max(0, self.n - 1)

    def describe(self) -> str:
        if self.mean is None:
            return "reference not trained"
        if self.sd is None:
            return f"reference {self.mean:.2f} % (1 seed: seed noise not measured)"
        return f"reference {self.mean:.2f} ± {self.sd:.2f} % (mean ± SD over {self.n} seeds)"


def reference_noise(attrs: dict) -> ReferenceNoise:
    ref = attrs.get("reference_result") or {}
    return ReferenceNoise(ref.get("top1"), ref.get("top1_sd"), int(ref.get("n") or (1 if ref.get("top1") is not None else 0)))


def delta_to_reference(r: st.TrialRecord, noise: ReferenceNoise) -> Delta | None:
    """The trial's validation top-1 minus the reference's mean, with its 95 % interval."""
    if r.accuracy is None or noise.mean is None:
        return None
    return delta_interval(r.accuracy, 1, noise.mean, max(1, noise.n), noise.sd, noise.df)


def indistinguishable_from(front: list[st.TrialRecord], noise: ReferenceNoise) -> dict[int, list[int]]:
    """For each front member, the other members whose accuracy it cannot be told apart from
    (their difference's 95 % interval contains 0, both trained once)."""
    out: dict[int, list[int]] = {}
    for a in front:
        out[a.number] = [b.number for b in front if b is not a and a.accuracy is not None and b.accuracy is not None
                         and delta_interval(a.accuracy, 1, b.accuracy, 1, noise.sd, noise.df).verdict
                         == "indistinguishable"]
    return out


def delta_text(d: Delta | None) -> str:
    """``+0.42 [-1.10, +1.94] indistinguishable``; ``-`` when there is no accuracy."""
    if d is None:
        return "-"
    if d.low is None:
        return f"{d.delta:+.2f} (noise not measured)"
    return f"{d.delta:+.2f} [{d.low:+.2f}, {d.high:+.2f}] {d.verdict}"
