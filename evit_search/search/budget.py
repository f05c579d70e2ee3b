"""``--budget``: what a candidate must meet to be trained, as Optuna constraints (<= 0 is met).

Terms, comma-separated: ``1.25x`` (throughput at least 1.25 times the reference's, measured in
the same session on the same backend), ``500ips`` (at least 500 images/s), ``20ms`` (at most
20 ms per batch of the backend's batch size), ``params<5M`` and ``flops<300M`` (``M`` or ``G``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError

_TERM = re.compile(  # any case and spacing: "1.25X", "FLOPs < 300m", "Params<5M"
    r"^(?:(?P<ratio>\d+(?:\.\d+)?)x"
    r"|(?P<ips>\d+(?:\.\d+)?)ips"
    r"|(?P<ms>\d+(?:\.\d+)?)ms"
    r"|(?P<what>params|flops)<=?(?P<num>\d+(?:\.\d+)?)(?P<unit>[mg]))$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Budget:
    min_ratio: float | None = None
    min_images_per_s: float | None = None
    max_ms_per_batch: float | None = None
    max_params_m: float | None = None
    max_flops_m: float | None = None
    text: str = ""

    def cost_constraints(self, params_m: float, flops_m: float) -> dict[str, float]:
        """Constraints that need no timing (checked first, cheap)."""
        out = {}
        if self.max_params_m is not None:
            out["params_m"] = params_m - self.max_params_m
        if self.max_flops_m is not None:
            out["flops_m"] = flops_m - self.max_flops_m
        return out

    def speed_constraints(self, ratio: float | None, images_per_s: float | None, ms_per_batch: float | None) -> dict[str, float]:
        out = {}
        if self.min_ratio is not None:
            out["throughput_ratio"] = self.min_ratio - ratio
        if self.min_images_per_s is not None:
            out["images_per_s"] = self.min_images_per_s - images_per_s
        if self.max_ms_per_batch is not None:
            out["ms_per_batch"] = ms_per_batch - self.max_ms_per_batch
        return out

    def verdict(self, rec) -> str:
        """Where a measured candidate (a ThroughputRecord) stands against the speed terms, with
        its intervals: ``within`` or ``outside`` when every interval is on one side of its bound,
        ``borderline`` when one contains its bound (the median alone decides feasibility)."""
        checks = []
        if self.min_ratio is not None:
            checks.append((rec.ratio_ci_low, rec.ratio_ci_high, self.min_ratio))
        if self.min_images_per_s is not None:
            checks.append((rec.images_per_s_ci_low, rec.images_per_s_ci_high, self.min_images_per_s))
        if self.max_ms_per_batch is not None and rec.batch_size and rec.images_per_s_ci_low:
            # ms per batch falls as img/s rises: the ms bound is an img/s bound
            checks.append((rec.images_per_s_ci_low, rec.images_per_s_ci_high,
                           1000.0 * rec.batch_size / self.max_ms_per_batch))
        if any(lo is None or hi is None or lo <= bound <= hi for lo, hi, bound in checks):
            return "borderline"
        return "within" if all(lo > bound for lo, hi, bound in checks) else "outside"

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f"throughput >= {self.min_ratio:g}x the reference")
        if self.min_images_per_s is not None:
            parts.append(f">= {self.min_images_per_s:g} img/s")
        if self.max_ms_per_batch is not None:
            parts.append(f"<= {self.max_ms_per_batch:g} ms per batch")
        if self.max_params_m is not None:
            parts.append(f"params <= {self.max_params_m:g}M")
        if self.max_flops_m is not None:
            parts.append(f"FLOPs <= {self.max_flops_m:g}M")
        return ", ".join(parts) or "no budget"


def parse_budget(text: str, space_limits: dict[str, float] | None = None) -> Budget:
    values: dict[str, float] = {}
    for raw in [t.strip() for t in (text or "").split(",") if t.strip()]:
        m = _TERM.match(raw.replace(" ", ""))
        if not m:
            raise UserError(f"--budget: {raw!r} is not a budget term; use e.g. 1.25x, 500ips, 20ms, params<5M, flops<300M")
        if m["ratio"]:
            key, v = "min_ratio", float(m["ratio"])
        elif m["ips"]:
            key, v = "min_images_per_s", float(m["ips"])
        elif m["ms"]:
            key, v = "max_ms_per_batch", float(m["ms"])
        else:
            scale = 1000.0 if m["unit"] in "gG" else 1.0
            key, v = f"max_{m['what'].lower()}_m", float(m["num"]) * scale
        if v <= 0:
            raise UserError(f"--budget: {raw!r} must be positive")
        if key in values:
            raise UserError(f"--budget: {raw!r} repeats a term already given")
        values[key] = v
    for k, v in (space_limits or {}).items():  # the space's limits apply unless the budget is stricter
        key = f"max_{k}"
        values[key] = min(values.get(key, v), v)
    if not values:
        raise UserError("--budget: give at least one term, e.g. 1.25x")
    return Budget(text=text, **values)


def budget_ratio(text: str | None) -> float | None:
    """The speed ratio a stored budget asks for, for plots (None when it has none or is unreadable)."""
    try:
        return parse_budget(text or "").min_ratio
    except UserError:  # an old study without a budget: no line drawn
        return None
