"""What a measurement is given and what it gives back: plain records, no torch, no optuna."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BACKENDS = ("torch-cpu", "onnx-cpu", "cuda", "onnx-cuda")


@dataclass(frozen=True)
class ModelSpec:
    """What to measure. ``source`` is ``efficientvit`` (``config`` is a config dict) or ``timm``
    (``timm_name``). ``fold``: fold BN (ours: efficientvit.fuse, deploy mode; timm:
    reparameterize_model). ``jit``: ``none`` (eager), ``trace`` (the official protocol) or
    ``freeze`` (trace + freeze + optimize_for_inference; the deploy default)."""

    label: str
    source: str = "efficientvit"
    config: dict | None = None
    timm_name: str | None = None
    img_size: int = 224
    in_chans: int = 3
    fold: bool = True
    jit: str = "freeze"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Settings:
    batch_size: int = 16
    threads: int = 1
    channels_last: bool = False
    seconds: float = 2.0  # per timed segment
    warmup_s: float = 2.0
    min_rounds: int = 6  # the fewest whose median interval covers 95 % (stats.MIN_ROUNDS_95)
    max_rounds: int = 15
    target_ci: float = 0.03
    time_cap_s: float = 600.0
    cuda_batch: int | None = None  # None: largest power of two from 2048 that fits
    cuda_seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ThroughputRecord:
    model: str
    backend: str
    status: str  # ok | failed | skipped
    reason: str | None = None
    batch_size: int | None = None
    threads: int | None = None
    images_per_s: float | None = None
    images_per_s_min: float | None = None
    images_per_s_max: float | None = None
    images_per_s_ci_low: float | None = None
    images_per_s_ci_high: float | None = None
    ci_coverage: float | None = None  # the real coverage of both intervals (order statistics; 95 % needs >= 6 rounds)
    spread: float | None = None  # max/min - 1 over rounds
    rounds: int = 0
    samples_images_per_s: list[float] = field(default_factory=list)
    reference: str | None = None
    ratio_to_reference: float | None = None  # median of per-round paired ratios
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    ms_per_batch: float | None = None
    seconds_per_segment: float | None = None
    precision: str | None = None  # fp32, or float16-autocast on the GPU
    input_size: int | None = None
    jit: str | None = None
    fold: bool | None = None
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ThroughputRecord":
        return cls(**d)
