"""Successive halving across the front (multi-objective ASHA, as syne-tune's MO-ASHA does it).

Optuna cannot prune multi-objective studies (``Trial.report`` raises with more than one
direction), so the engine does it: every feasible candidate trains to rung 0, a fraction of the
protocol's training; a candidate is promoted to the next rung when it is among the top 1/eta,
by non-dominated rank on (rung accuracy, measured throughput ratio), of the candidates that
reached that rung. Promotion is asynchronous (a free worker promotes what it may, else it starts
a new trial), claimed atomically in the study, and a promoted candidate continues from its
rung's checkpoint. Fronts and verdicts use top-rung candidates only.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNGS = 3  # rung fractions of the protocol's training: eta^-2, eta^-1, 1


def fractions(eta: int, rungs: int = RUNGS) -> list[float]:
    return [float(eta) ** -(rungs - 1 - r) for r in range(rungs)]


@dataclass(frozen=True)
class Point:
    number: int
    accuracy: float
    ratio: float


def _dominates(a: Point, b: Point) -> bool:
    return a.accuracy >= b.accuracy and a.ratio >= b.ratio and (a.accuracy > b.accuracy or a.ratio > b.ratio)


def nondominated_fronts(points: list[Point]) -> list[list[Point]]:
    """Points sorted into successive non-dominated fronts (the first is the Pareto front)."""
    left, fronts = list(points), []
    while left:
        front = [p for p in left if not any(_dominates(q, p) for q in left if q is not p)]
        fronts.append(sorted(front, key=lambda p: p.number))
        left = [p for p in left if p not in front]
    return fronts


def _crowding(front: list[Point]) -> dict[int, float]:
    """NSGA-II's crowding distance: points at the ends, and in sparse parts of a front, first."""
    dist = {p.number: 0.0 for p in front}
    for key in ("accuracy", "ratio"):
        ranked = sorted(front, key=lambda p: getattr(p, key))
        span = getattr(ranked[-1], key) - getattr(ranked[0], key) or 1.0
        dist[ranked[0].number] = dist[ranked[-1].number] = float("inf")
        for a, b, c in zip(ranked, ranked[1:], ranked[2:]):
            dist[b.number] += (getattr(c, key) - getattr(a, key)) / span
    return dist


def top_fraction(points: list[Point], eta: int) -> list[int]:
    """The numbers of the top ``len(points) // eta`` points by non-dominated rank (ties within the
    last front broken by crowding distance, then by trial number)."""
    k = len(points) // eta
    chosen: list[int] = []
    for front in nondominated_fronts(points):
        if len(chosen) >= k:
            break
        if len(chosen) + len(front) <= k:
            chosen += [p.number for p in front]
        else:
            crowd = _crowding(front)
            chosen += [p.number for p in sorted(front, key=lambda p: (-crowd[p.number], p.number))][: k - len(chosen)]
    return chosen


def promotable(at_rung: dict[int, list[Point]], promoted: dict[int, set[int]], eta: int, top: int) -> list[tuple[int, int]]:
    """(number, next rung) pairs that may be promoted now, lowest rung first: at each rung below
    ``top``, the top 1/eta of those that reached it, less those already promoted from it."""
    out = []
    for rung in sorted(at_rung):
        if rung >= top:
            continue
        out += [(n, rung + 1) for n in top_fraction(at_rung[rung], eta) if n not in promoted.get(rung, set())]
    return out
