"""Successive halving across the front (multi-objective ASHA, as syne-tune's MO-ASHA does it).

Optuna cannot prune multi-objective studies (``Trial.report`` raises with more than one
direction), so the engine does it: every feasible candidate trains to rung 0, a fraction of the
protocol's training; a candidate is promoted to the next rung when it is among the top 1/eta,
by non-dominated rank on (rung accuracy, measured throughput ratio), of the candidates that
reached that rung. Promotion is asynchronous (a free worker promotes what it may, else it starts
a new trial), claimed atomically in the study, and a promoted candidate continues from its
rung's checkpoint. Fronts and verdicts use top-rung candidates only.

How many rungs: up to three (eta^-2, eta^-1, 1), fewer when the lowest would end within
:data:`MIN_RUNG_WARMUPS` warm-ups (:func:`rung_count`; ``run --rungs`` overrides it).

Finishing the front. Plain ASHA promotes ``len // eta`` of a rung, so a short run (fewer than
eta^2 feasible candidates, or a time budget spent on new trials) ends with nobody at the top
rung and an empty front. As asynchronous runs do in practice, the run finishes what it started.
Once it will start no new trial -- its trial count is reached, or, while no candidate is at the
top rung, the time left (``--timeout``, or a benchmark's budget) is no more than
:func:`reserve_s`: one more trial plus carrying one candidate from the highest rung reached to the
top, at the rung costs measured so far -- promotion relaxes until a candidate is at the top rung:
the highest rung below the top that holds candidates promotes at least one, its non-dominated
best (k = max(1, len // eta); of its first front's two ends the most accurate goes first, the end
a budget-constrained search values most). Highest rung first, because that candidate is the
cheapest to finish. Past the time limit only this finishing chain runs (at most one candidate's
training from its rung to the top); a plain promotion runs, when time is limited, only if its
measured cost fits in the time left. Once a candidate is at the top, new trials start until the
time is up, as without successive halving. The relaxation is a pure function of the stored
rungs, claimed like any promotion: resumable, and never done twice by two workers.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNGS = 3  # rung fractions of the protocol's training: eta^-2, eta^-1, 1 (at most)
MIN_RUNG_WARMUPS = 3  # the lowest rung trains at least this many warm-up lengths


def fractions(eta: int, rungs: int = RUNGS) -> list[float]:
    return [float(eta) ** -(rungs - 1 - r) for r in range(rungs)]


def rung_count(eta: int, epochs: float, warmup_epochs: float, most: int = RUNGS) -> int:
    """The most rungs (``most`` at the most, 2 at the least) whose lowest one trains at least
    :data:`MIN_RUNG_WARMUPS` warm-up lengths. A rung that ends in or just after the warm-up ranks
    nothing: measured with the default CPU proxy (1 epoch, warm-up 0.1), rung 0 at 1/9 -- 13 steps,
    the LR still at its peak -- left the 8 candidates of a 15-CPU-minute search at 10.0-19.9 %
    top-1 (chance is 10 % on ten classes; 5 of them at 10.0 %), while the three carried to 1/3 scored
    68.9-70.5 %. So a 1-epoch proxy gets rungs 1/3 and 1."""
    for n in range(most, 2, -1):
        if epochs * float(eta) ** -(n - 1) >= MIN_RUNG_WARMUPS * warmup_epochs:
            return n
    return 2


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


def top_fraction(points: list[Point], eta: int, at_least: int = 0) -> list[int]:
    """The numbers of the top ``max(at_least, len(points) // eta)`` points by non-dominated rank
    (ties within the last front broken by crowding distance, then by accuracy -- of a front's two
    ends, the most accurate first -- then by trial number)."""
    k = min(len(points), max(at_least, len(points) // eta))
    chosen: list[int] = []
    for front in nondominated_fronts(points):
        if len(chosen) >= k:
            break
        if len(chosen) + len(front) <= k:
            chosen += [p.number for p in front]
        else:
            crowd = _crowding(front)
            order = sorted(front, key=lambda p: (-crowd[p.number], -p.accuracy, p.number))
            chosen += [p.number for p in order][: k - len(chosen)]
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


def finishing(at_rung: dict[int, list[Point]], promoted: dict[int, set[int]], eta: int,
              top: int) -> list[tuple[int, int]]:
    """The relaxed promotions that finish the front once the run starts no new trial: while no
    candidate is at the ``top`` rung, the highest rung below it that holds candidates promotes
    its top ``max(1, len // eta)`` (one alone: its most accurate non-dominated point), less those
    already promoted or being promoted. Empty once a candidate is at the top."""
    if at_rung.get(top):
        return []
    for rung in sorted((r for r in at_rung if r < top and at_rung[r]), reverse=True):
        picks = top_fraction(at_rung[rung], eta, at_least=1)
        return [(n, rung + 1) for n in picks if n not in promoted.get(rung, set())]
    return []


def seconds_per_fraction(states: dict[int, dict], fracs: list[float]) -> float | None:
    """Measured training seconds per whole protocol: the median over every rung entry of its
    seconds divided by the fraction it added (a promotion continues from the rung below)."""
    rates = []
    for state in states.values():
        for e in state.get("rungs", []):
            r = e["rung"]
            added = fracs[r] - (fracs[r - 1] if r > 0 else 0.0)
            if e.get("seconds") and added > 0:
                rates.append(e["seconds"] / added)
    return sorted(rates)[len(rates) // 2] if rates else None


def reserve_s(states: dict[int, dict], fracs: list[float], trial_s: float | None) -> float:
    """Seconds to keep when time is limited: one more trial (``trial_s``, a new feasible
    candidate's measuring and rung-0 training as measured so far) plus carrying one candidate
    from the highest rung reached to the top. Nothing while no candidate reached rung 0 (nothing
    to finish) or once one is at the top (finished: new trials start until the time is up, as
    without successive halving)."""
    reached = [e["rung"] for state in states.values() for e in state.get("rungs", [])]
    if not reached or max(reached) >= len(fracs) - 1:
        return 0.0
    per = seconds_per_fraction(states, fracs) or 0.0
    return (trial_s or 0.0) + (1.0 - fracs[max(reached)]) * per
