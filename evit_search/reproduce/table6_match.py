"""Table 6 rows at matched throughput, as the paper compared them.

The paper reduced the blocks of rows 2-4 "to keep similar throughput" without giving all the
depths, and row 8 (FFN ratio 4, 61 % more FLOPs) cannot run at M4's speed with M4's widths and
depths. For each such row this module builds a bounded set of variants (depths; for row 8 also
narrower stages), measures them with row 1 in ONE interleaved session on the budget's backend,
and picks the variant whose paired throughput ratio to row 1 is closest to 1.0 and within 5 %;
without one within 5 % it says so and takes the closest. The measuring function is a parameter,
so tests can give it a fake backend with known ratios.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import efficientvit
from efficientvit import EfficientViTConfig

from ..hooks import Hooks
from ..measure.cost import count_cost, count_flops
from ..measure.records import ModelSpec, Settings, ThroughputRecord
from ..reporting.markdown import coverage_text, interval_text
from ..training.zerocost import THREADS, torch_threads

MATCH_ROWS = (2, 3, 4, 8)  # the rows the paper compared at similar throughput (8: see the module doc)
WIDTH_ROWS = (8,)  # rows that may also narrow their stages, once depths alone do not match
TOLERANCE = 0.05  # |ratio - 1| that counts as matched
MAX_DEPTH = 4  # M5, the deepest preset, has 4 blocks in a stage; every stage keeps at least 1
# Variants measured in one session, all rows together (row 1 comes on top). 24 variants at the
# default 1.5 s segments, 5-15 rounds and 1.5 s warm-up take 5-11 minutes on one CPU thread.
MAX_CANDIDATES = 24
# Candidates are spread over FLOPs within this factor of row 1's: CPU throughput per FLOP differs
# between block designs (row 2's Swin layout ran 11 % faster than row 1 at 16 % fewer FLOPs, row
# 8's wide FFNs 0.67x at 1.61x the FLOPs), so the variant at row 1's speed is seldom the one at
# row 1's FLOPs; +-20 % covers the differences measured on this project's CPUs.
FLOPS_WINDOW = 1.2
WIDTH_SCALES = tuple(i / 32 for i in range(16, 32))  # 0.5 .. 0.97 of the stated widths

MeasureFn = Callable[..., list[ThroughputRecord]]  # evit_search.measure.runner.measure's signature


@dataclass(frozen=True)
class Candidate:
    label: str  # unique in the session, e.g. "row 2 depth 3/2/3"
    row: int
    kind: str  # stated | depth | width
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    flops_m: float
    config: dict

    def summary(self, ratio: float | None = None, ci: tuple[float | None, ...] = (None, None)) -> dict:
        """``ci``: (low, high) or (low, high, coverage) of the ratio's interval."""
        return {"label": self.label, "kind": self.kind, "depths": list(self.depths), "widths": list(self.widths),
                "flops_m": self.flops_m, "ratio": ratio, "ci_low": ci[0], "ci_high": ci[1],
                "ci_coverage": ci[2] if len(ci) > 2 else None}


@dataclass
class RowMatch:
    """The outcome for one row: what the paper's text gives (``stated``), the variant chosen, and
    every variant measured, each with its ratio to row 1 on ``backend``."""

    row: int
    backend: str
    matched: bool  # the chosen variant is within the tolerance
    chosen: dict
    stated: dict
    tried: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)  # the chosen variant's config
    tolerance: float = TOLERANCE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RowMatch":
        return cls(**d)

    @property
    def noisy(self) -> bool:
        """The chosen ratio's CI (of the coverage its rounds give) reaches outside 1 +- tolerance:
        the measurement cannot tell whether the match holds (a busy host)."""
        lo, hi = self.chosen.get("ci_low"), self.chosen.get("ci_high")
        return lo is not None and hi is not None and (lo < 1 - self.tolerance or hi > 1 + self.tolerance)

    def text(self) -> str:
        """One line for reports and the CLI."""
        c, s = self.chosen, self.stated

        def what(d: dict) -> str:
            out = "depths " + "/".join(map(str, d["depths"]))
            return out + (" widths " + "/".join(map(str, d["widths"])) if d.get("kind") == "width" else "")

        def ratio(d: dict) -> str:
            if d.get("ratio") is None:
                return "not measured"
            ci = interval_text(d.get("ci_low"), d.get("ci_high"), d.get("ci_coverage"))
            return f"{d['ratio']:.3f}x" + (f" {ci}" if ci else "")

        head = (f"row {self.row}: {what(c)} at {ratio(c)} row 1 on {self.backend}"
                + ("" if self.matched else f" — no match within {100 * self.tolerance:g} %, the closest is used"))
        if self.noisy:
            head += (f" — its {coverage_text(c.get('ci_coverage'))} reaches outside +-{100 * self.tolerance:g} %: "
                     "too noisy to tell")
        if c["label"] != s["label"]:
            head += f" (as the table states it, {what(s)}: {ratio(s)})"
        return head + f"; {len(self.tried)} variants measured"


def _depths(cfg: EfficientViTConfig) -> tuple[int, ...]:
    return tuple(s.depth for s in cfg.stages)


def _widths(cfg: EfficientViTConfig) -> tuple[int, ...]:
    return tuple(s.dim for s in cfg.stages)


def _slash(xs) -> str:
    return "/".join(map(str, xs))


def block_flops(cfg: EfficientViTConfig) -> tuple[float, tuple[float, ...]]:
    """FLOPs (M) of the whole fused model and of one block of each stage. The blocks of a stage
    are identical, so FLOPs are exactly linear in the depths: one count gives every depth."""
    model = efficientvit.fuse(efficientvit.build(cfg))
    total = count_cost(cfg).flops_m
    res = cfg.stage_resolutions()
    per = tuple(count_flops(model.stages[i].blocks[0], (s.dim, res[i], res[i])) / 1e6 if s.depth else 0.0
                for i, s in enumerate(cfg.stages))
    return total, per


def depth_pool(row: int, cfg: EfficientViTConfig) -> tuple[Candidate, list[Candidate]]:
    """The stated config and every other depth with 1..MAX_DEPTH blocks per stage."""
    total, per = block_flops(cfg)
    stated = _depths(cfg)
    mk = lambda kind, d, label: Candidate(label, row, kind, d, _widths(cfg),
                                          total + sum((a - b) * f for a, b, f in zip(d, stated, per)),
                                          cfg.with_overrides(depth=d).to_dict())
    pool = [mk("depth", d, f"row {row} depth {_slash(d)}")
            for d in itertools.product(range(1, MAX_DEPTH + 1), repeat=len(stated)) if d != stated]
    return mk("stated", stated, f"row {row} stated"), pool


def width_pool(row: int, cfg: EfficientViTConfig, ref_flops: float, stated_flops: float) -> list[Candidate]:
    """Narrower stages at the stated depths, every width a multiple of lcm(8, heads) (the stem
    needs C/8; heads must divide C). Only scales whose FLOPs (about quadratic in the width) may
    fall in the window are counted."""
    out, seen = [], set()
    for s in WIDTH_SCALES:
        if not ref_flops / FLOPS_WINDOW ** 1.5 <= stated_flops * s * s <= ref_flops * FLOPS_WINDOW ** 1.5:
            continue
        widths = tuple(max(q, round(st.dim * s / q) * q) for st in cfg.stages
                       for q in [math.lcm(8, st.num_heads)])
        if widths in seen or widths == _widths(cfg):
            continue
        seen.add(widths)
        wcfg = cfg.with_overrides(dim=widths).validate()
        out.append(Candidate(f"row {row} width {_slash(widths)}", row, "width", _depths(cfg), widths,
                             count_cost(wcfg).flops_m, wcfg.to_dict()))
    return out


def pick_spread(pool: list[Candidate], ref_flops: float, k: int, stated_depths: tuple[int, ...]) -> list[Candidate]:
    """Up to ``k`` candidates spread over the FLOPs window around row 1: the window is cut into
    ``k`` equal bins (log FLOPs) and each bin gives its candidate nearest the bin's centre,
    preferring fewer changed stages among near-equals. Bins without a candidate give their slot
    to the next-nearest ones inside; with fewer than 2 inside, the nearest outside fill to 2 (as
    evidence that nothing nearer exists)."""
    if k <= 0 or not pool:
        return []
    lo, hi = math.log(ref_flops / FLOPS_WINDOW), math.log(ref_flops * FLOPS_WINDOW)
    step = (hi - lo) / k
    inside = [c for c in pool if lo <= math.log(c.flops_m) <= hi]
    changes = lambda c: sum(a != b for a, b in zip(c.depths, stated_depths))
    picked: list[Candidate] = []
    for i in range(k):
        centre = lo + step * (i + 0.5)
        in_bin = [c for c in inside if abs(math.log(c.flops_m) - centre) <= step / 2 and c not in picked]
        if in_bin:
            # near-equals: within a quarter of a bin of the centre count as equally near
            picked.append(min(in_bin, key=lambda c: (int(abs(math.log(c.flops_m) - centre) / (step / 4)), changes(c),
                                                     abs(math.log(c.flops_m) - centre))))
    by_distance = lambda c: (abs(math.log(c.flops_m / ref_flops)), changes(c))
    for c in sorted(inside, key=by_distance):
        if len(picked) >= k:
            break
        if c not in picked:
            picked.append(c)
    for c in sorted((c for c in pool if c not in inside), key=by_distance):
        if len(picked) >= min(k, 2):
            break
        picked.append(c)
    return picked


def row_candidates(row: int, cfg: EfficientViTConfig, ref_flops: float, k: int, k_width: int | None = None) -> list[Candidate]:
    """The stated config first, then up to ``k`` depth variants; for WIDTH_ROWS half of those
    slots, and ``k_width`` (default: the other half) narrower variants."""
    stated, depths = depth_pool(row, cfg)
    k_depth = k if row not in WIDTH_ROWS else max(1, k // 2)
    out = [stated, *pick_spread(depths, ref_flops, k_depth, stated.depths)]
    if row in WIDTH_ROWS:
        k_width = k - k_depth if k_width is None else k_width
        out += pick_spread(width_pool(row, cfg, ref_flops, stated.flops_m), ref_flops, k_width, stated.depths)
    return out


def choose(row: int, cands: list[Candidate], ratios: dict[str, float | None], backend: str,
           tolerance: float = TOLERANCE, cis: dict[str, tuple[float | None, ...]] | None = None) -> RowMatch:
    """Depths first: the closest depth variant (the stated one included) when it is within the
    tolerance; else the closest of all. Unmeasured variants (failed) are never chosen. ``cis``:
    each ratio's CI as (low, high) or (low, high, coverage), kept with it."""
    cis = cis or {}
    stated = cands[0]
    measured = [c for c in cands if ratios.get(c.label) is not None]
    summary = lambda c: c.summary(ratios.get(c.label), cis.get(c.label, (None, None)))
    tried = [summary(c) for c in cands]
    if not measured:
        return RowMatch(row, backend, False, summary(stated), summary(stated), tried, stated.config, tolerance)
    dist = lambda c: abs(ratios[c.label] - 1.0)
    depth_like = [c for c in measured if c.kind != "width"]
    best = min(depth_like, key=dist) if depth_like else None
    if best is None or dist(best) > tolerance:
        best = min(measured, key=dist)
    return RowMatch(row, backend, dist(best) <= tolerance, summary(best), summary(stated), tried, best.config, tolerance)


def match_throughput(row_cfgs: dict[int, EfficientViTConfig], reference: EfficientViTConfig, backend: str,
                     settings: Settings, measure_fn: MeasureFn, hooks: Hooks | None = None) -> dict[int, RowMatch]:
    """Match every row of ``row_cfgs`` to ``reference`` (row 1) on ``backend``, in one session."""
    hooks = hooks or Hooks()
    if not row_cfgs:
        return {}
    k = max(1, MAX_CANDIDATES // len(row_cfgs) - 1)
    cands: dict[int, list[Candidate]] = {}
    with torch_threads(THREADS):  # FLOP counts: one thread is the fast choice on a shared small CPU
        ref_flops = count_cost(reference).flops_m
        # depth-only rows first: the slots they leave unused (few depths near row 1) go to the
        # width rows' narrower variants, whose grid is finer
        order = sorted(row_cfgs, key=lambda r: (r in WIDTH_ROWS, r))
        for i, r in enumerate(order):
            if r in WIDTH_ROWS:
                left = (MAX_CANDIDATES - sum(map(len, cands.values()))) // len(order[i:])
                cands[r] = row_candidates(r, row_cfgs[r], ref_flops, k, max(1, left - 1 - max(1, k // 2)))
            else:
                cands[r] = row_candidates(r, row_cfgs[r], ref_flops, k)
    cands = dict(sorted(cands.items()))
    specs = [ModelSpec("row 1", config=reference.to_dict(), img_size=reference.img_size, in_chans=reference.in_chans)]
    specs += [ModelSpec(c.label, config=c.config, img_size=reference.img_size, in_chans=reference.in_chans)
              for cs in cands.values() for c in cs]
    hooks.info(f"matching the throughput of rows {', '.join(map(str, cands))} to row 1: {len(specs) - 1} variants "
               f"in one session on {backend}")
    recs = measure_fn(specs, [backend], settings, reference="row 1", listener=hooks.measure)
    ok = [r for r in recs if r.status == "ok" and r.backend == backend]
    ratios = {r.model: r.ratio_to_reference for r in ok}
    cis = {r.model: (r.ratio_ci_low, r.ratio_ci_high, r.ci_coverage) for r in ok}
    return {r: choose(r, cs, ratios, backend, cis=cis) for r, cs in cands.items()}
