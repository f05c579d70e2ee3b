"""Proxy training: the paper's recipe built from timm's parts, scaled by named protocols.

The recipe (the official main.py defaults): AdamW without decay on 1-D parameters, biases and
attention biases; cosine schedule with warm-up down to ``min_lr``; mixup/cutmix with label
smoothing; RandAugment; random erasing; optional EMA and adaptive gradient clipping; fp32.
Protocols set its sizes, from the paper's 300 epochs at 224 px down to a proxy that trains an
M4-sized candidate in minutes on a 2-core CPU; each protocol's description states where it
departs from the official recipe.

A run selects on its ``val`` split and reports its ``test`` split once, at the end (see
:mod:`.splits`). Every CPU-heavy step holds the host lock shared (:mod:`evit_search.hostlock`),
so that no throughput measurement times beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3, adaptive_clip_grad

import efficientvit
from efficientvit import EfficientViTConfig

from .. import hostlock
from ..errors import UserError
from ..hooks import EpochCallback, StepCallback
from .augment import BatchAugment, loss_fn
from .bundle import DataBundle
from .device import autocast, check_precision, resolve_device
from .protocols import Protocol
from .splits import Splits, prepare_data

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """One training run. ``top1``/``top5``/``val_loss``: the last epoch on the validation split
    (what a search selects on); ``test_*``: the test split, evaluated once at the end (what
    reports show beside them)."""

    status: str  # ok | failed
    reason: str | None = None
    top1: float | None = None
    top5: float | None = None
    val_loss: float | None = None
    test_top1: float | None = None
    test_top5: float | None = None
    test_loss: float | None = None
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    wall_s: float = 0.0  # the whole run, waits for the host lock included
    train_s: float = 0.0  # the training steps only: what train_images_per_s is measured over
    cpu_s: float = 0.0  # CPU time of this process during the run (all threads)
    train_images_per_s: float | None = None
    images_seen: int = 0
    seed: int = 0
    protocol: str = ""
    dataset: str = ""
    splits: dict = field(default_factory=dict)  # images per split
    threads: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    memory_format: str = "contiguous"
    compiled: bool = False  # torch.compile is not used: its compile time per new architecture outweighs its gain
    fraction: float = 1.0  # of the protocol's training done (below 1: a rung of successive halving)
    trained_config: dict | None = None
    # the trained model and its final config, for callers that save them (not serialised)
    model: object = field(default=None, repr=False, compare=False)
    config: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in ("model", "config")}


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: torch.nn.Module, x_u8: torch.Tensor, y: torch.Tensor, mean, std, batch: int = 512,
             device: str = "cpu", channels_last: bool = False) -> dict:
    """Top-1, top-5 (%) and mean cross-entropy over a split (None for an empty split)."""
    if len(y) == 0:
        return {"top1": None, "top5": None, "loss": None}
    model.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1).to(device)
    s = torch.tensor(std).view(1, -1, 1, 1).to(device)
    correct1 = correct5 = 0
    loss_sum = 0.0
    for i in range(0, len(y), batch):
        xb = (x_u8[i:i + batch].to(device).float().div_(255) - m) / s
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = y[i:i + batch].to(device)
        with autocast(device):  # the official evaluation runs under fp16 autocast on the GPU
            out = model(xb).float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        correct1 += (top[:, 0] == yb).sum().item()
        correct5 += (top == yb[:, None]).any(dim=1).sum().item()
    n = len(y)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "loss": loss_sum / n}


# --------------------------------------------------------------------------- training
def _seed_all(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def schedule(opt, p: Protocol, steps_per_epoch: int, batch: int) -> CosineLRScheduler:
    """Warm-up, then a cosine that reaches ``min_lr`` at the last step. The LR scales with the
    batch (per 512 images, as the official main.py); ``min_lr`` does not (nor does it there)."""
    warmup = int(round(p.warmup_epochs * steps_per_epoch))
    total = steps_per_epoch * p.epochs
    return CosineLRScheduler(opt, t_initial=max(1, total - warmup), lr_min=p.min_lr, warmup_t=warmup,
                             warmup_lr_init=p.warmup_lr, warmup_prefix=True, t_in_epochs=False)


@contextlib.contextmanager
def _held(lock: bool, what: str) -> Iterator[float]:
    with hostlock.working(what) if lock else contextlib.nullcontext(0.0) as waited:
        yield waited


def train(cfg: EfficientViTConfig, data: DataBundle | Splits, protocol: Protocol, seed: int = 0,
          checkpoint_dir: str | os.PathLike | None = None, threads: int | None = None,
          on_step: StepCallback | None = None, on_epoch: EpochCallback | None = None,
          lock: bool = True, device: str = "cpu", precision: str = "fp32", run_key: dict | None = None,
          fresh_on_mismatch: bool = False, until: float = 1.0) -> TrainResult:
    """Train ``cfg`` (resized to the protocol and dataset), evaluate it on the validation split
    every epoch and on the test split at the end.

    ``data``: a :class:`Splits` from :func:`prepare_data`, or a raw bundle prepared here.
    ``device``/``precision``: ``cpu`` trains fp32; ``cuda[:N]`` fp32 too unless ``precision='amp'``
    (fp16 autocast with loss scaling). Deterministic for a seed on CPU: every epoch reseeds all
    generators from (seed, epoch), so an interrupted run resumed from its per-epoch checkpoint
    gives the same result. The checkpoint holds ``run_key`` (what makes the run: architecture,
    protocol, seed, precision, and whatever the caller adds); one of another run is refused, or
    with ``fresh_on_mismatch`` set aside and the run starts fresh. ``until``: stop after that
    fraction of the protocol's steps (a rung of successive halving) with the learning-rate schedule
    of the full run, so that a later call continues it exactly; the test split is evaluated only
    at the end of the full run. A NaN or infinite loss ends the run with ``status='failed'`` and
    the reason, never a zero accuracy.
    """
    p = protocol
    t_start, cpu_start = time.perf_counter(), time.process_time()
    threads = threads or int(os.environ.get("EVIT_TRAIN_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = resolve_device(device)
    precision = check_precision(precision, device)
    if not isinstance(data, Splits):
        with _held(lock, "preparing data"):
            data = prepare_data(data, p)
    if len(data.train_y) < 2:
        raise UserError(f"{data.name}: fewer than 2 training images after subsetting")
    cfg = cfg.with_overrides(num_classes=data.num_classes, in_chans=data.in_chans, img_size=p.img_size).validate()
    channels_last = p.channels_last
    result = TrainResult(status="ok", seed=seed, protocol=p.name, dataset=data.name, threads=threads, device=device,
                         precision=precision, memory_format="channels_last" if channels_last else "contiguous",
                         splits=data.sizes(), trained_config=cfg.to_dict())

    _seed_all(seed)
    with _held(lock, "building the model"):
        model = efficientvit.build(cfg).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
    amp = precision == "amp"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    batch = min(p.batch_size, len(data.train_y) - len(data.train_y) % 2)
    steps_per_epoch = max(1, len(data.train_y) // batch)
    # timm's param groups exempt 1-D params, biases and model.no_weight_decay() (attention_biases)
    opt = create_optimizer_v2(model, "adamw", lr=p.lr * batch / 512, weight_decay=p.weight_decay, eps=1e-8)
    sched = schedule(opt, p, steps_per_epoch, batch)
    ema = ModelEmaV3(model, decay=p.ema_decay) if p.ema_decay else None
    augment = BatchAugment(p, data)
    key = {"arch_id": cfg.arch_id(), "protocol": p.to_dict(), "seed": seed, "precision": precision, **(run_key or {})}

    ckpt_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    total_steps = steps_per_epoch * p.epochs
    stop_step = total_steps if until >= 1.0 else max(1, min(total_steps, round(until * total_steps)))
    done_steps, rng = 0, None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("key") != key:
            if not fresh_on_mismatch:
                raise UserError(f"{ckpt_path} belongs to another run (architecture, protocol, seed or data differ); "
                                "use another --checkpoint-dir or delete it")
            log.warning("%s belongs to another run; starting afresh (it is kept as %s)", ckpt_path,
                        ckpt_path.with_suffix(".other.pt").name)
            ckpt_path.replace(ckpt_path.with_suffix(".other.pt"))
        else:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if ema is not None and state.get("ema"):
                ema.module.load_state_dict(state["ema"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            done_steps, rng = state["step"], state["rng"]
            result.history = state["history"]
            result.images_seen = state["images_seen"]
            result.train_s = state["train_s"]
            log.info("resuming from %s at step %d of %d", ckpt_path, done_steps, total_steps)

    while done_steps < stop_step:
        epoch, first = divmod(done_steps, steps_per_epoch)
        gen = _seed_all(seed * 100_003 + epoch)
        perm = torch.randperm(len(data.train_y), generator=gen)
        if first and rng is not None:  # resumed inside an epoch: every generator where it stopped
            _set_rng(gen, rng)
        last = min(steps_per_epoch, stop_step - epoch * steps_per_epoch)
        with _held(lock, f"training epoch {epoch + 1}"):
            t_epoch = time.perf_counter()  # after the lock: waiting is not training
            model.train()
            loss_sum, n_seen = 0.0, 0
            for step in range(first, last):
                idx = perm[step * batch:(step + 1) * batch]
                x, target = augment(data.train_x[idx], data.train_y[idx], gen)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                x, target = x.to(device, non_blocking=True), target.to(device, non_blocking=True)
                with autocast(device, enabled=amp):
                    out = model(x)
                loss = loss_fn(out.float(), target)
                if not torch.isfinite(loss):
                    result.status = "failed"
                    result.reason = f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: training diverged"
                    result.wall_s = time.perf_counter() - t_start
                    return result
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)  # clipping sees the true gradients
                else:
                    loss.backward()
                if p.clip_grad:
                    adaptive_clip_grad(model.parameters(), clip_factor=p.clip_grad)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                sched.step_update(epoch * steps_per_epoch + step + 1)
                if ema is not None:
                    ema.update(model)
                loss_sum += loss.item() * len(idx)
                n_seen += len(idx)
                if on_step:
                    on_step(epoch, step + 1, steps_per_epoch, loss.item())
            t_train = time.perf_counter() - t_epoch
            done_steps = epoch * steps_per_epoch + last
            metrics = evaluate(model, data.val_x, data.val_y, data.mean, data.std, p.eval_batch, device, channels_last)
            at = done_steps / steps_per_epoch
            entry = {"epoch": int(at) if at.is_integer() else round(at, 4), "train_loss": loss_sum / max(1, n_seen),
                     "val_top1": metrics["top1"], "val_top5": metrics["top5"], "val_loss": metrics["loss"],
                     "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t_epoch,
                     "train_images_per_s": n_seen / t_train if t_train > 0 else None}
            if ema is not None:
                entry["ema_val_top1"] = evaluate(ema.module, data.val_x, data.val_y, data.mean, data.std, p.eval_batch,
                                                 device, channels_last)["top1"]
            result.train_s += t_train
            result.images_seen += n_seen
            result.history.append(entry)
            if ckpt_path:
                ckpt_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = ckpt_path.with_suffix(".tmp")
                torch.save({"key": key, "config": cfg.to_dict(), "step": done_steps, "rng": _get_rng(gen),
                            "model": model.state_dict(), "optimizer": opt.state_dict(),
                            "ema": ema.module.state_dict() if ema is not None else None,
                            "scaler": scaler.state_dict() if scaler is not None else None, "history": result.history,
                            "images_seen": result.images_seen, "train_s": result.train_s}, tmp)
                tmp.replace(ckpt_path)  # atomic: a kill never leaves half a checkpoint
        if on_epoch:
            on_epoch(entry)

    result.fraction = done_steps / total_steps
    last = result.history[-1] if result.history else {}
    # the paper reports the non-EMA model's accuracy; the EMA figure is in the history
    result.top1, result.top5, result.val_loss = last.get("val_top1"), last.get("val_top5"), last.get("val_loss")
    result.train_images_per_s = result.images_seen / result.train_s if result.train_s > 0 else None
    result.wall_s = time.perf_counter() - t_start
    result.cpu_s = time.process_time() - cpu_start
    if channels_last:
        model = model.to(memory_format=torch.contiguous_format)  # saved weights load anywhere
    result.model, result.config = model, cfg
    if result.fraction < 1.0:  # a rung of successive halving: the test split waits for the full run
        return result
    with _held(lock, "evaluating on the test split"):
        test = evaluate(model, data.test_x, data.test_y, data.mean, data.std, p.eval_batch, device)
    result.test_top1, result.test_top5, result.test_loss = test["top1"], test["top5"], test["loss"]
    result.wall_s = time.perf_counter() - t_start
    result.cpu_s = time.process_time() - cpu_start
    return result


def _get_rng(gen: torch.Generator) -> dict:
    return {"gen": gen.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng(gen: torch.Generator, rng: dict) -> None:
    gen.set_state(rng["gen"])
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def save_model(path: str | os.PathLike, model: torch.nn.Module, cfg: EfficientViTConfig, extra: dict | None = None) -> Path:
    """A checkpoint that :func:`efficientvit.load_model` reads back: config + state dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}  # loadable on any machine
    with hostlock.working("saving a checkpoint"):
        torch.save({"config": cfg.to_dict(), "state_dict": state, **(extra or {})}, path)
    return path
