"""Search spaces as YAML files: load, validate (errors name file and key), decode to configs.

A space file::

    name: tiny
    input: {img_size: 64, in_chans: 3, num_classes: 1000}   # where cost and speed are measured
    reference: efficientvit_m0                             # what the budget is relative to
    stages:                                                # one mapping per stage
      - {dim: [32, 64], depth: [1], num_heads: [2, 4], kernels: ["5,5,5,5"]}
      - ...
    fixed: {block: sandwich, attention: cga}               # the Table 6 switches
    limits: {params_m: 5, flops_m: 100}                    # optional cheap limits

Per-stage values are a list (choices), a mapping ``{low, high[, step]}`` (an int or float range)
or a single value (fixed). ``kernels`` choices are strings like ``"7,5,3,3"``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

import efficientvit
from efficientvit.config import STAGE_FIELDS, EfficientViTConfig, StageConfig
from efficientvit.errors import ConfigError

from ..errors import SpaceError

TOP_KEYS = {"name", "description", "input", "reference", "stages", "fixed", "limits", "objectives"}
INPUT_KEYS = {"img_size", "in_chans", "num_classes"}
FIXED_KEYS = {"block", "attention", "cascade", "qkv", "token_dw", "norm", "act"}
LIMIT_KEYS = {"params_m", "flops_m"}
OBJECTIVES = ("accuracy", "throughput")
INT_FIELDS = {"dim", "head_dim", "depth", "num_heads", "key_dim", "window_size", "n_ffn"}
FLOAT_FIELDS = {"v_ratio", "ffn_ratio"}
REQUIRED_STAGE = ("depth", "num_heads")
# a stage gives its width as ``dim`` or as ``head_dim`` (the width per head: dim = num_heads x
# head_dim), which makes every sampled width divisible by its heads
STAGE_KEYS = (*STAGE_FIELDS, "head_dim")


@dataclass(frozen=True)
class Param:
    """One searchable (or fixed) value: ``choices`` or a ``low..high`` range with ``step``."""

    name: str
    kind: str  # categorical | int | float | fixed
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None

    def match(self, v: Any) -> Any:
        """The allowed value equal to ``v`` (floats within 1e-9), or None."""
        if self.kind == "float" and not self.step:
            return v if self.low <= v <= self.high else None
        return next((a for a in self.values(limit=10_000) if a == v or (isinstance(a, float) and isinstance(v, (int, float))
                                                                           and abs(a - v) < 1e-9)), None)

    def values(self, limit: int = 64) -> list:
        """A finite list of the values (ranges sampled on their step grid) for feasibility checks."""
        if self.kind in ("categorical", "fixed"):
            return list(self.choices)
        if self.step:
            n = int(round((self.high - self.low) / self.step)) + 1
            vals = [self.low + i * self.step for i in range(min(n, limit))]
            return [int(v) if self.kind == "int" else round(v, 10) for v in vals]
        return [self.low, self.high]


@dataclass
class SearchSpace:
    name: str
    path: str
    stages: list[dict[str, Param]]
    fixed: dict[str, Any] = field(default_factory=dict)
    input: dict[str, int] = field(default_factory=lambda: {"img_size": 224, "in_chans": 3, "num_classes": 1000})
    reference: str = "efficientvit_m4"
    limits: dict[str, float] = field(default_factory=dict)
    objectives: tuple[str, ...] = OBJECTIVES
    description: str = ""

    # ------------------------------------------------------------------ sampling
    def suggest(self, trial) -> EfficientViTConfig:
        """Ask an Optuna trial for every searchable value; returns the (unvalidated) config."""
        stages = []
        for i, params in enumerate(self.stages):
            values = {}
            for name, p in params.items():
                key = f"s{i}.{name}"
                if p.kind == "fixed":
                    v = p.choices[0]
                elif p.kind == "categorical":
                    v = trial.suggest_categorical(key, list(p.choices))
                elif p.kind == "int":
                    v = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1))
                else:
                    v = trial.suggest_float(key, p.low, p.high, step=p.step)
                values[name] = v
            stages.append(values)
        return self.decode(stages)

    def decode(self, stage_values: list[dict[str, Any]]) -> EfficientViTConfig:
        stages = []
        for values in stage_values:
            values = dict(values)
            if "kernels" in values:
                values["kernels"] = parse_kernels(values["kernels"])
            if "head_dim" in values:
                values["dim"] = values["num_heads"] * values.pop("head_dim")
            stages.append(StageConfig(**values))
        return EfficientViTConfig(stages=tuple(stages), **self.input, **self.fixed)

    def encode(self, cfg: EfficientViTConfig) -> dict[str, Any] | None:
        """The sampler's parameters that decode to ``cfg`` (at this space's input and switches),
        or None when ``cfg`` is not in the space: how the paper's models are enqueued."""
        if len(cfg.stages) != len(self.stages) or any(getattr(cfg, k) != v for k, v in self.fixed.items()):
            return None
        out: dict[str, Any] = {}
        for i, (params, st) in enumerate(zip(self.stages, cfg.stages)):
            for name, p in params.items():
                v = (st.dim // st.num_heads if name == "head_dim" else ",".join(map(str, st.kernels)) if name == "kernels"
                     else getattr(st, name))
                found = p.match(v)
                if found is None:
                    return None
                if p.kind != "fixed":
                    out[f"s{i}.{name}"] = found
        decoded = self.decode([{n: p.choices[0] if p.kind == "fixed" else out[f"s{i}.{n}"] for n, p in params.items()}
                               for i, params in enumerate(self.stages)])
        return out if decoded.arch_id() == cfg.with_overrides(**self.input).arch_id() else None

    def blind_knobs(self, grid: tuple[int, ...]) -> list[str]:
        """Knobs this space searches that a protocol with stage token grid ``grid`` cannot see:
        with one token in a stage, attention's softmax is 1 there, so its key dim and Q kernels
        cannot change accuracy (they still cost throughput at the measured size)."""
        return [f"stages[{i}].{name}" for i, params in enumerate(self.stages) if i < len(grid) and grid[i] < 2
                for name in ("key_dim", "kernels") if name in params and params[name].kind != "fixed"]

    def grid(self) -> dict[str, list]:
        """Search space for Optuna's GridSampler (ranges on their step grid)."""
        out = {}
        for i, params in enumerate(self.stages):
            for name, p in params.items():
                if p.kind != "fixed":
                    if p.kind == "float" and not p.step:
                        raise SpaceError(f"{self.path}: stages[{i}].{name}: the grid sampler needs a 'step' for float ranges")
                    out[f"s{i}.{name}"] = p.values(limit=10_000)
        return out


def parse_kernels(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(int(k) for k in value.replace(" ", "").split(",") if k)
    return tuple(int(k) for k in value)


# --------------------------------------------------------------------------- loading
# The repository's search_spaces/ folder is shipped in the wheel as this package (pyproject.toml)
BUILTIN_PACKAGE = "evit_search.search_spaces"


def builtin_file(name: str) -> Path | None:
    """A built-in space or table file by name (``tiny``, ``tiny.yaml``), or None."""
    folder = resources.files(BUILTIN_PACKAGE)
    for cand in (name, f"{name}.yaml"):
        f = folder.joinpath(cand)
        if cand.endswith(".yaml") and f.is_file():
            return Path(str(f))
    return None


def builtin_names() -> list[str]:
    """The built-in spaces (files with ``stages``; the Table 6 rows file is not a space)."""
    return sorted(f.name[:-5] for f in resources.files(BUILTIN_PACKAGE).iterdir()
                  if f.name.endswith(".yaml") and "stages" in (yaml.safe_load(f.read_text()) or {}))


def resolve_space(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    found = builtin_file(name_or_path)
    if found is None:
        raise SpaceError(f"--space {name_or_path}: no such file and no built-in space of that name "
                         f"(built-in: {', '.join(builtin_names())})")
    return found


def _err(path, key: str, msg: str) -> SpaceError:
    return SpaceError(f"{path}: {key}: {msg}")


def _param(path, key: str, name: str, raw: Any) -> Param:
    want_int = name in INT_FIELDS
    if name == "kernels":
        if isinstance(raw, list) and raw and all(isinstance(v, (str, list)) for v in raw):
            choices = []
            for v in raw:
                try:
                    ks = parse_kernels(v)
                except (TypeError, ValueError):
                    raise _err(path, key, f"kernel list {v!r} is not comma-separated ints") from None
                choices.append(",".join(map(str, ks)))
            return Param(name, "categorical" if len(choices) > 1 else "fixed", tuple(choices))
        if isinstance(raw, str):
            return Param(name, "fixed", (",".join(map(str, parse_kernels(raw))),))
        raise _err(path, key, f"must be a list of kernel lists like [\"7,5,3,3\"], got {raw!r}")
    if isinstance(raw, list):
        if not raw:
            raise _err(path, key, "empty choice list: give at least one value")
        for v in raw:
            if not _is_number(v, want_int):
                raise _err(path, key, f"choice {v!r} must be {'an int' if want_int else 'a number'}")
        if len(set(raw)) != len(raw):
            raise _err(path, key, f"repeated choices in {raw}")
        return Param(name, "categorical" if len(raw) > 1 else "fixed", tuple(raw))
    if isinstance(raw, dict):
        unknown = set(raw) - {"low", "high", "step"}
        if unknown:
            raise _err(path, key, f"unknown range key(s) {sorted(unknown)}; use low, high, step")
        if "low" not in raw or "high" not in raw:
            raise _err(path, key, "a range needs low and high")
        lo, hi, step = raw["low"], raw["high"], raw.get("step")
        for k, v in (("low", lo), ("high", hi), ("step", step)):
            if v is not None and not _is_number(v, want_int):
                raise _err(path, f"{key}.{k}", f"{v!r} must be {'an int' if want_int else 'a number'}")
        if lo > hi:
            raise _err(path, key, f"empty range: low={lo} > high={hi}")
        if step is not None and step <= 0:
            raise _err(path, f"{key}.step", f"{step} must be positive")
        return Param(name, "int" if want_int else "float", (), lo, hi, step)
    if _is_number(raw, want_int):
        return Param(name, "fixed", (raw,))
    raise _err(path, key, f"{raw!r} must be a list of choices, a {{low, high, step}} range or a single "
                          f"{'int' if want_int else 'number'}")


def _section(path, data: dict, name: str, known: set[str], not_mapping: str, known_label: str) -> dict:
    """An optional top-level mapping whose keys must all be in ``known``."""
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise _err(path, name, not_mapping)
    for k in section:
        if k not in known:
            raise _err(path, f"{name}.{k}", f"unknown key; {known_label}: {', '.join(sorted(known))}")
    return section


def _is_number(v: Any, want_int: bool) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) if want_int else isinstance(v, (int, float))


def load_space(name_or_path: str) -> SearchSpace:
    """Load and validate a space file; every error names the file and the key."""
    path = resolve_space(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpaceError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: the file must be a mapping with 'stages'")
    for key in data:
        if key not in TOP_KEYS:
            raise _err(path, key, f"unknown key; known: {', '.join(sorted(TOP_KEYS))}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise _err(path, "stages", "must be a non-empty list with one mapping per stage")
    stages = []
    for i, raw in enumerate(raw_stages):
        key = f"stages[{i}]"
        if not isinstance(raw, dict):
            raise _err(path, key, "must be a mapping of stage fields")
        for name in raw:
            if name not in STAGE_KEYS:
                raise _err(path, f"{key}.{name}", f"unknown key; stage fields: {', '.join(STAGE_KEYS)}")
        for name in REQUIRED_STAGE:
            if name not in raw:
                raise _err(path, f"{key}.{name}", "is required")
        if ("dim" in raw) == ("head_dim" in raw):
            raise _err(path, f"{key}.dim", "give the width as dim or as head_dim (dim = num_heads x head_dim), one of them")
        stages.append({name: _param(path, f"{key}.{name}", name, v) for name, v in raw.items()})

    inp = {"img_size": 224, "in_chans": 3, "num_classes": 1000}
    raw_in = _section(path, data, "input", INPUT_KEYS, "must be a mapping (img_size, in_chans, num_classes)", "known")
    for k, v in raw_in.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise _err(path, f"input.{k}", f"{v!r} must be a positive int")
        inp[k] = v

    fixed = _section(path, data, "fixed", FIXED_KEYS, "must be a mapping of switches", "switches")
    try:  # switch values are checked by the config's own rules
        EfficientViTConfig(stages=(StageConfig(64, 1, 4),), **fixed).validate()
    except ConfigError as e:
        raise _err(path, f"fixed.{e.field}", f"{e.value!r} {e.rule}") from None
    except TypeError as e:
        raise _err(path, "fixed", str(e)) from None

    limits = _section(path, data, "limits", LIMIT_KEYS, "must be a mapping (params_m, flops_m)", "known")
    for k, v in limits.items():
        if not _is_number(v, False) or v <= 0:
            raise _err(path, f"limits.{k}", f"{v!r} must be a positive number")

    objectives = tuple(data.get("objectives") or OBJECTIVES)
    if sorted(objectives) != sorted(OBJECTIVES):
        raise _err(path, "objectives", f"{list(objectives)}: the search maximises exactly {list(OBJECTIVES)}")

    reference = data.get("reference", "efficientvit_m4")
    if reference not in efficientvit.list_models():
        raise _err(path, "reference", f"{reference!r} is not a model name (see `evit-search models`)")

    space = SearchSpace(name=str(data.get("name") or path.stem), path=str(path), stages=stages, fixed=dict(fixed),
                        input=inp, reference=reference, limits=dict(limits), objectives=objectives,
                        description=str(data.get("description") or ""))
    _check_some_valid(space)
    return space


def _check_some_valid(space: SearchSpace) -> None:
    """Each stage must admit at least one valid combination (stages are independent except for
    the stem rule on stage 0's width), or no candidate of the space can ever be valid."""
    for i, params in enumerate(space.stages):
        names = list(params)
        total = 1
        for p in params.values():
            total *= len(p.values())
        if total > 20_000:  # keep loading fast: search the interacting fields, others at their first value
            names = [n for n in ("dim", "num_heads", "kernels") if n in params]
        first_error = None
        for combo in itertools.product(*(params[n].values() for n in names)):
            values = {**_first(params), **dict(zip(names, combo))}
            try:
                cfg = space.decode([values if j == i else _first(space.stages[j]) for j in range(len(space.stages))])
                cfg._validate_stage(i, cfg.stages[i])
                if i == 0 and cfg.stages[0].dim % 8:
                    raise ConfigError("stages[0].dim", cfg.stages[0].dim, "must be divisible by 8 (stem widths C/8..C)")
                break
            except ConfigError as e:
                first_error = first_error or e
            except (TypeError, ValueError) as e:
                first_error = first_error or ConfigError(f"stages[{i}]", values, str(e))
        else:
            raise SpaceError(f"{space.path}: stages[{i}]: no candidate can be valid; for example {first_error}")


def _first(params: dict[str, Param]) -> dict[str, Any]:
    return {n: p.values()[0] for n, p in params.items()}
