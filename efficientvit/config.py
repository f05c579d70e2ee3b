"""Frozen, typed configuration of one EfficientViT: the single source of truth of the family.

A model is a :class:`EfficientViTConfig` made of one :class:`StageConfig` per stage plus the
switches of the paper's Table 6 ablations. Presets (M0-M5, the Table 6 rows) are values of this
type; :func:`efficientvit.build` turns any valid value into a module.

``validate()`` runs before any build and raises :class:`~efficientvit.errors.ConfigError` naming
the field path, the value and the rule, so that an invalid candidate is never found by crashing
inside ``forward``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .errors import ConfigError

BLOCKS = ("sandwich", "swin")
ATTENTIONS = ("cga", "mhsa")
QKV_ALLOCATIONS = ("reallocated", "uniform")
NORMS = ("bn", "ln")
ACTS = ("relu", "hardswish")

# Names of per-stage fields that create_model()/with_overrides() broadcast over the stages.
STAGE_FIELDS = (
    "dim",
    "depth",
    "num_heads",
    "key_dim",
    "v_ratio",
    "window_size",
    "kernels",
    "n_ffn",
    "ffn_ratio",
)


def downsampled(resolution: int) -> int:
    """Output size of a 3x3 convolution with stride 2 and padding 1 (the paper's subsample)."""
    return (resolution - 1) // 2 + 1


@dataclass(frozen=True)
class StageConfig:
    """One stage of EfficientViT: ``depth`` blocks at one resolution and width.

    Attributes:
        dim: width C of the stage.
        depth: number of EfficientViT blocks L.
        num_heads: attention heads H; ``dim`` splits evenly over them.
        key_dim: width of Q and K per head (16 in the paper).
        v_ratio: V width per head relative to ``dim / num_heads`` (1.0 in the paper).
        window_size: side of the local attention window (7 in the paper).
        kernels: kernel of the depthwise conv on Q, one per head (extra entries unused).
        n_ffn: N, the number of (DWConv, FFN) pairs before and after the single attention.
        ffn_ratio: FFN hidden width relative to ``dim`` (2 in the paper).
    """

    dim: int
    depth: int
    num_heads: int
    key_dim: int = 16
    v_ratio: float = 1.0
    window_size: int = 7
    kernels: tuple[int, ...] = (5, 5, 5, 5)
    n_ffn: int = 1
    ffn_ratio: float = 2.0

    @property
    def head_split(self) -> int:
        """Input channels that each head receives (C/h)."""
        return self.dim // self.num_heads


@dataclass(frozen=True)
class EfficientViTConfig:
    """A whole EfficientViT design.

    The ablation switches reproduce the rows of the paper's Table 6:

    - ``block``: ``sandwich`` (N x [DW, FFN], attention, N x [DW, FFN]) or ``swin``
      (attention then ``n_ffn`` FFNs, no DW token interaction), row 2.
    - ``attention``: ``cga`` (cascaded group attention) or ``mhsa`` (every head sees all
      channels), row 5.
    - ``cascade``: add each head's output to the next head's input split, row 6.
    - ``qkv``: ``reallocated`` (Q, K of ``key_dim``; V of ``v_ratio * C/h``) or ``uniform``
      (Q, K and V all of C/h), row 7.
    - ``token_dw``: the residual 3x3 depthwise token interaction in blocks and subsample blocks,
      row 9.
    - ``norm``: ``bn`` (foldable at deploy time) or ``ln`` (channel-wise LayerNorm), row 10.
    - ``act``: ``relu`` or ``hardswish`` for every activation, row 11.
    """

    stages: tuple[StageConfig, ...]
    img_size: int = 224
    in_chans: int = 3
    num_classes: int = 1000
    block: str = "sandwich"
    attention: str = "cga"
    cascade: bool = True
    qkv: str = "reallocated"
    token_dw: bool = True
    norm: str = "bn"
    act: str = "relu"
    distillation: bool = False
    drop_rate: float = 0.0

    # ------------------------------------------------------------------ derived sizes
    def stage_resolutions(self) -> tuple[int, ...]:
        """Feature-map side per stage: the stem divides by 16, each later stage by 2."""
        r = self.img_size
        for _ in range(4):  # four stride-2 convs in the stem
            r = downsampled(r)
        out = [r]
        for _ in self.stages[1:]:
            out.append(downsampled(out[-1]))
        return tuple(out)

    def qk_dim(self, i: int) -> int:
        """Width of Q and K per head in stage ``i``."""
        s = self.stages[i]
        return s.head_split if self.qkv == "uniform" else s.key_dim

    def v_dim(self, i: int) -> int:
        """Width of V per head in stage ``i``."""
        s = self.stages[i]
        if self.qkv == "uniform":
            return s.head_split
        return max(1, round(s.v_ratio * s.head_split))

    # ------------------------------------------------------------------ validation
    def validate(self) -> "EfficientViTConfig":
        """Check every rule; return ``self`` so that calls chain. Raises ConfigError."""
        _check_choice("block", self.block, BLOCKS)
        _check_choice("attention", self.attention, ATTENTIONS)
        _check_choice("qkv", self.qkv, QKV_ALLOCATIONS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("act", self.act, ACTS)
        for name in ("cascade", "token_dw", "distillation"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be true or false")
        _check_int("img_size", self.img_size, minimum=16)
        _check_int("in_chans", self.in_chans, minimum=1)
        _check_int("num_classes", self.num_classes, minimum=0)
        if not isinstance(self.drop_rate, (int, float)) or not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError("drop_rate", self.drop_rate, "must be a number in [0, 1)")
        if not isinstance(self.stages, tuple) or not self.stages:
            raise ConfigError("stages", self.stages, "must be a non-empty tuple of StageConfig")
        for i, s in enumerate(self.stages):
            if not isinstance(s, StageConfig):
                raise ConfigError(f"stages[{i}]", s, "must be a StageConfig")
            self._validate_stage(i, s)
        if self.stages[0].dim % 8:
            raise ConfigError(
                "stages[0].dim",
                self.stages[0].dim,
                "must be divisible by 8 (the stem widens 3 -> C/8 -> C/4 -> C/2 -> C)",
            )
        return self

    def _validate_stage(self, i: int, s: StageConfig) -> None:
        p = f"stages[{i}]"
        _check_int(f"{p}.dim", s.dim, minimum=1)
        _check_int(f"{p}.depth", s.depth, minimum=0)
        _check_int(f"{p}.num_heads", s.num_heads, minimum=1)
        _check_int(f"{p}.key_dim", s.key_dim, minimum=1)
        _check_int(f"{p}.window_size", s.window_size, minimum=1)
        _check_int(f"{p}.n_ffn", s.n_ffn, minimum=1)
        if s.dim % s.num_heads:
            raise ConfigError(f"{p}.dim", s.dim, f"is not divisible by num_heads={s.num_heads}")
        if not isinstance(s.v_ratio, (int, float)) or isinstance(s.v_ratio, bool) or s.v_ratio <= 0:
            raise ConfigError(f"{p}.v_ratio", s.v_ratio, "must be a positive number")
        if self.qkv == "uniform" and s.v_ratio != 1.0:
            raise ConfigError(
                f"{p}.v_ratio", s.v_ratio, "must be 1.0 with qkv='uniform' (Q, K, V all get C/h)"
            )
        if not isinstance(s.ffn_ratio, (int, float)) or isinstance(s.ffn_ratio, bool):
            raise ConfigError(f"{p}.ffn_ratio", s.ffn_ratio, "must be a number")
        if int(s.dim * s.ffn_ratio) < 1:
            raise ConfigError(f"{p}.ffn_ratio", s.ffn_ratio, f"gives no hidden unit at dim={s.dim}")
        if not isinstance(s.kernels, tuple):
            raise ConfigError(f"{p}.kernels", s.kernels, "must be a tuple of ints")
        if len(s.kernels) < s.num_heads:
            raise ConfigError(
                f"{p}.kernels",
                s.kernels,
                f"has fewer kernels than num_heads={s.num_heads} (one Q depthwise kernel per head)",
            )
        for j, k in enumerate(s.kernels):
            if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
                raise ConfigError(f"{p}.kernels[{j}]", k, "must be a positive odd int")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON/YAML-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["stages"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()} for s in d["stages"]]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EfficientViTConfig":
        """Inverse of :meth:`to_dict`; unknown keys are errors, not silently dropped."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", data, "must be a mapping")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(key, data[key], f"is not a config field (known: {', '.join(sorted(known))})")
        if "stages" not in data:
            raise ConfigError("stages", None, "is required")
        raw_stages = data["stages"]
        if not isinstance(raw_stages, (list, tuple)):
            raise ConfigError("stages", raw_stages, "must be a list of stage mappings")
        stage_known = {f.name for f in fields(StageConfig)}
        stages = []
        for i, s in enumerate(raw_stages):
            if not isinstance(s, Mapping):
                raise ConfigError(f"stages[{i}]", s, "must be a mapping")
            for key in s:
                if key not in stage_known:
                    raise ConfigError(
                        f"stages[{i}].{key}", s[key], f"is not a stage field (known: {', '.join(STAGE_FIELDS)})"
                    )
            for key in ("dim", "depth", "num_heads"):
                if key not in s:
                    raise ConfigError(f"stages[{i}].{key}", None, "is required")
            s = dict(s)
            if "kernels" in s and isinstance(s["kernels"], list):
                s["kernels"] = tuple(s["kernels"])
            stages.append(StageConfig(**s))
        rest = {k: v for k, v in data.items() if k != "stages"}
        return cls(stages=tuple(stages), **rest)

    def with_overrides(self, **overrides: Any) -> "EfficientViTConfig":
        """A copy with fields replaced.

        Top-level fields replace as they are. Stage fields (``dim``, ``depth``, ``num_heads``,
        ``key_dim``, ``v_ratio``, ``window_size``, ``kernels``, ``n_ffn``, ``ffn_ratio``) take one
        value for every stage or a sequence with one value per stage.
        """
        top = {f.name for f in fields(self)}
        stage_over: dict[str, Any] = {}
        top_over: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in STAGE_FIELDS:
                stage_over[key] = value
            elif key in top:
                top_over[key] = value
            else:
                raise ConfigError(
                    key, value, f"is not a config field (top-level: {', '.join(sorted(top))}; per stage: {', '.join(STAGE_FIELDS)})"
                )
        stages = self.stages
        if stage_over:
            n = len(stages)
            new = [dict(dataclasses.asdict(s)) for s in stages]
            for key, value in stage_over.items():
                per_stage = _per_stage(key, value, n)
                for i in range(n):
                    new[i][key] = per_stage[i]
            stages = tuple(StageConfig(**s) for s in new)
        return dataclasses.replace(self, stages=stages, **top_over)

    def arch_id(self) -> str:
        """Stable identity of the architecture (hash of the canonical config).

        Two configs that build the same network get the same id, so that a search never measures
        or trains a repeat. ``num_classes``/``in_chans``/``img_size`` are part of it: they change
        the network and its cost.
        """
        canonical = json.dumps(self.canonical_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def canonical_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with the values that do not change the network normalised away:

        - Q kernels beyond ``num_heads`` (unused);
        - ``window_size`` above the stage's resolution (attention then covers the whole map: the
          effective window is ``min(window_size, resolution)``);
        - ``key_dim`` with ``qkv='uniform'`` (Q and K get C/h);
        - every attention field of a stage without blocks (``depth=0``): such a stage is only its
          subsample (dim and ffn_ratio);
        - ``cascade`` with ``attention='mhsa'`` (MHSA has no cascade).
        """
        d = self.to_dict()
        resolutions = self.stage_resolutions()
        for i, s in enumerate(d["stages"]):
            st = self.stages[i]
            s["kernels"] = s["kernels"][: st.num_heads]
            s["v_ratio"] = float(s["v_ratio"])
            s["ffn_ratio"] = float(s["ffn_ratio"])
            s["window_size"] = min(st.window_size, resolutions[i])
            if self.qkv == "uniform":
                s["key_dim"] = None
            if st.depth == 0:
                for k in ("num_heads", "key_dim", "v_ratio", "window_size", "kernels", "n_ffn"):
                    s[k] = None
        if self.attention == "mhsa":
            d["cascade"] = None
        return d


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, value, f"is not one of {', '.join(choices)}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(name, value, "must be an int")
    if value < minimum:
        raise ConfigError(name, value, f"must be >= {minimum}")


def _per_stage(key: str, value: Any, n: int) -> list[Any]:
    """Broadcast one value to ``n`` stages, or check a per-stage sequence has length ``n``."""
    if key == "kernels":
        # kernels is itself a tuple: a flat tuple of ints is the same list for every stage
        if isinstance(value, (list, tuple)) and value and all(isinstance(k, (list, tuple)) for k in value):
            if len(value) != n:
                raise ConfigError(key, value, f"needs one kernel list per stage ({n})")
            return [tuple(v) for v in value]
        return [tuple(value)] * n
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(key, value, f"needs one value per stage ({n}) or a single value")
        return list(value)
    return [value] * n


def stage(dim: int, depth: int, num_heads: int, **kwargs: Any) -> StageConfig:
    """Shorthand used by the presets."""
    return StageConfig(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


__all__ = [
    "ACTS",
    "ATTENTIONS",
    "BLOCKS",
    "EfficientViTConfig",
    "NORMS",
    "QKV_ALLOCATIONS",
    "STAGE_FIELDS",
    "StageConfig",
    "downsampled",
    "stage",
]
