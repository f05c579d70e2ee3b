"""Zero-cost accuracy scores: one batch, one initialisation, a few forward/backward passes.

Each score is written from its paper's definition (no code copied):

- ``synflow`` (Tanaka et al. 2020, as a NAS score in Abdelfattah et al., ICLR 2021): every
  parameter replaced by its absolute value, BatchNorm left out (an identity), float64, an input of
  ones; R = sum of the outputs; the score is sum |w * dR/dw| over the weights of every Conv2d and
  Linear. Data-free. LayerNorm (Table 6 row 10) stays, as the definition only drops BatchNorm.
- ``snip`` (Lee et al. 2019, in Abdelfattah et al.): sum |w * dL/dw| over the Conv2d and Linear
  weights, L the cross-entropy of the batch.
- ``grad_norm`` (Abdelfattah et al.): sum over the Conv2d and Linear layers of ||dL/dw||_2.
- ``naswot`` (Mellor et al., ICML 2021): each activation unit (ReLU or Hardswish, whose input is
  > 0 or not) gives every image a binary code; K[i, j] = number of units on which images i and j
  agree; the score is log|det K|.

Mode: the data scores run the network in **train mode**, as the papers did with fresh networks:
BatchNorm normalises with the batch's own statistics, which makes every score independent of
the order of the images in the batch (a permutation permutes K and the per-sample terms of the
loss). Deterministic for a seed: the seed fixes the initialisation (the same for every score)
and which images are drawn. Every score is "higher is better".
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import efficientvit
from efficientvit import EfficientViTConfig

from .. import hostlock
from ..errors import DataError
from .data import DataBundle, load_dataset, make_synthetic
from .protocols import Protocol
from .splits import Splits, prepare_data

SCORES = ("synflow", "snip", "grad_norm", "naswot")
DEFAULT_BATCH = 32  # images per score: seconds for an M4-sized model on a 2-core CPU at the proxy's 64 px
MODE = "train"
THREADS = 1  # on a busy 2-core machine two threads ran these passes 10-20x slower than one


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Batch:
    """The images every candidate is scored on: normalised float ``x`` (B, C, H, W), labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    source: str
    seed: int

    @property
    def img_size(self) -> int:
        return int(self.x.shape[-1])

    @property
    def in_chans(self) -> int:
        return int(self.x.shape[1])

    def permuted(self, perm: torch.Tensor) -> "Batch":
        """The same images in another order (the scores must not change)."""
        return Batch(self.x[perm], self.y[perm], self.num_classes, self.source, self.seed)


def draw_batch(bundle: DataBundle | Splits, img_size: int, batch_size: int = DEFAULT_BATCH, seed: int = 0) -> Batch:
    """``batch_size`` training images drawn with ``seed``, resized to ``img_size`` and normalised
    with the dataset's mean and std (as the trainer does)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(bundle.train_y), generator=g)[:batch_size]
    x = bundle.train_x[idx].float().div_(255)
    if x.shape[-1] != img_size:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False,
                          antialias=img_size < x.shape[-1])
    mean = torch.tensor(bundle.mean).view(1, -1, 1, 1)
    std = torch.tensor(bundle.std).view(1, -1, 1, 1)
    return Batch((x - mean) / std, bundle.train_y[idx].clone(), bundle.num_classes,
                 f"{bundle.name} train, {len(idx)} images drawn with seed {seed}", seed)


def synthetic_batch(img_size: int, in_chans: int = 3, num_classes: int = 10, batch_size: int = DEFAULT_BATCH,
                    seed: int = 0) -> Batch:
    """A batch of the built-in synthetic gratings, for when there is no dataset."""
    bundle = make_synthetic(n_train=batch_size, n_val=1, num_classes=num_classes, resolution=img_size,
                            in_chans=in_chans, seed=seed)
    return draw_batch(bundle, img_size, batch_size, seed)


def protocol_batch(protocol: Protocol, data: str, data_dir: str | None = None, batch_size: int = DEFAULT_BATCH,
                   seed: int = 0, prepared: DataBundle | Splits | None = None) -> Batch:
    """The batch a protocol's candidates are scored on: images of its training subset at its
    input size (``prepared``: that subset, already loaded by a trainer), so that a trained and a
    --no-train run score on the same images. Without the dataset on this machine: the built-in
    synthetic gratings, and the batch's source says why."""
    if prepared is None:
        try:
            prepared = prepare_data(load_dataset(data, data_dir), protocol)
        except DataError as e:
            batch = synthetic_batch(protocol.img_size, batch_size=batch_size, seed=seed)
            return Batch(batch.x, batch.y, batch.num_classes, f"synthetic gratings ({data}: {str(e).splitlines()[0]})", seed)
    return draw_batch(prepared, protocol.img_size, batch_size, seed)


@dataclass
class ZeroCostResult:
    """Each score, the seconds it took, and what it was computed with."""

    scores: dict[str, float]
    seconds: dict[str, float]
    settings: dict = field(default_factory=dict)
    status: str = "ok"  # ok | failed
    reason: str | None = None

    @property
    def total_s(self) -> float:
        return float(sum(self.seconds.values()))

    def to_dict(self) -> dict:
        return asdict(self)


def _layers(model: nn.Module) -> list[nn.Module]:
    """The layers the scores sum over (the definitions': Conv2d and Linear weights)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _fresh(cfg: EfficientViTConfig, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # every score sees the same initial weights
    return efficientvit.build(cfg).train()


def score_loss_gradients(cfg: EfficientViTConfig, batch: Batch, seed: int) -> dict[str, float]:
    """snip and grad_norm: both read the gradients of one cross-entropy backward pass."""
    model = _fresh(cfg, seed)
    F.cross_entropy(model(batch.x), batch.y).backward()
    layers = [m for m in _layers(model) if m.weight.grad is not None]
    return {"snip": float(sum((m.weight.detach() * m.weight.grad).abs().sum().item() for m in layers)),
            "grad_norm": float(sum(m.weight.grad.norm().item() for m in layers))}


def _without_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _without_batchnorm(child)


def score_synflow(cfg: EfficientViTConfig, batch: Batch, seed: int) -> dict[str, float]:
    model = _fresh(cfg, seed)
    _without_batchnorm(model)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, batch.in_chans, batch.img_size, batch.img_size), dtype=torch.float64)
    model(ones).sum().backward()
    return {"synflow": float(sum((m.weight * m.weight.grad).abs().sum().item() for m in _layers(model)
                                 if m.weight.grad is not None))}


def score_naswot(cfg: EfficientViTConfig, batch: Batch, seed: int) -> dict[str, float]:
    model = _fresh(cfg, seed)
    n = len(batch.y)
    k = torch.zeros((n, n), dtype=torch.float64)

    def hook(_module, inputs, _output):
        code = (inputs[0].detach() > 0).reshape(n, -1).double()  # (B, units): which units fire
        k.add_(code @ code.T + (1 - code) @ (1 - code).T)  # agreements: both on or both off

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.Hardswish))]
    try:
        with torch.no_grad():
            model(batch.x)
    finally:
        for h in handles:
            h.remove()
    return {"naswot": float(torch.linalg.slogdet(k).logabsdet.item())}


# one pass per entry: (the scores it gives, the function); snip and grad_norm share a backward pass
PASSES: dict[str, tuple[tuple[str, ...], Callable[[EfficientViTConfig, Batch, int], dict[str, float]]]] = {
    "synflow": (("synflow",), score_synflow),
    "snip+grad_norm": (("snip", "grad_norm"), score_loss_gradients),
    "naswot": (("naswot",), score_naswot),
}


def score_config(cfg: EfficientViTConfig, batch: Batch, seed: int = 0, scores: tuple[str, ...] = SCORES,
                 threads: int = THREADS) -> ZeroCostResult:
    """Every score of ``cfg`` on ``batch``, with ``threads`` torch threads; the config is resized
    to the batch (input size, channels, classes). ``seconds`` is per pass (snip and grad_norm
    share one). A pass that raises or gives a value that is not finite makes the result
    ``failed`` with the reason, the other scores kept: never a made-up value."""
    cfg = cfg.with_overrides(img_size=batch.img_size, in_chans=batch.in_chans, num_classes=batch.num_classes).validate()
    out = ZeroCostResult({}, {}, {"batch_size": len(batch.y), "img_size": batch.img_size, "in_chans": batch.in_chans,
                                  "num_classes": batch.num_classes, "seed": seed, "mode": MODE, "data": batch.source,
                                  "threads": threads, "synflow_dtype": "float64, no BatchNorm"})
    problems = []
    # seeding the init must not move the caller's generator; like training, scoring holds the
    # host's shared lock so that no throughput is timed meanwhile
    with torch.random.fork_rng(devices=[]), torch_threads(threads), hostlock.working("computing zero-cost scores"):
        for pass_name, (gives, fn) in PASSES.items():
            if not set(gives) & set(scores):
                continue
            t0 = time.perf_counter()
            try:
                values = fn(cfg, batch, seed)
            except (RuntimeError, ValueError) as e:
                problems.append(f"{pass_name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            finally:
                out.seconds[pass_name] = time.perf_counter() - t0
            for name in set(gives) & set(scores):
                if math.isfinite(values[name]):
                    out.scores[name] = values[name]
                else:
                    problems.append(f"{name} is {values[name]}")
    if problems:
        out.status, out.reason = "failed", "; ".join(problems)
    out.scores = {k: out.scores[k] for k in SCORES if k in out.scores}
    return out
