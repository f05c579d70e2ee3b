"""Proxy training: the paper's recipe built from timm's parts, scaled by named protocols.

The recipe (the official main.py defaults): AdamW without decay on 1-D parameters, biases and
attention biases; cosine schedule with warm-up; mixup/cutmix with label smoothing; RandAugment;
random erasing; optional EMA and adaptive gradient clipping. Protocols set its sizes, from the
paper's 300 epochs at 224 px down to a proxy that trains an M4-sized candidate in minutes on a
2-core CPU.

Augmentation runs on uint8 tensor batches (crops with ``roi_align``, flips, erasing, mixup)
so that small machines spend their time in the model, not in PIL; RandAugment, which timm
implements on PIL images, runs per sample only in the protocols that ask for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
from .augment import BatchAugment, loss_fn
from .data import DataBundle, resize_bundle, subset
from .device import autocast, resolve_device
from .protocols import Protocol

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    status: str  # ok | failed
    reason: str | None = None
    top1: float | None = None
    top5: float | None = None
    val_loss: float | None = None
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    wall_s: float = 0.0
    train_images_per_s: float | None = None
    images_seen: int = 0
    seed: int = 0
    protocol: str = ""
    dataset: str = ""
    threads: int | None = None
    device: str = "cpu"
    # the trained model and its final config, for callers that save them (not serialised)
    model: object = field(default=None, repr=False, compare=False)
    config: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in ("model", "config")}


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: torch.nn.Module, x_u8: torch.Tensor, y: torch.Tensor, mean, std, batch: int = 512,
             device: str = "cpu") -> dict:
    model.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1).to(device)
    s = torch.tensor(std).view(1, -1, 1, 1).to(device)
    correct1 = correct5 = 0
    loss_sum = 0.0
    for i in range(0, len(y), batch):
        xb = (x_u8[i:i + batch].to(device).float().div_(255) - m) / s
        yb = y[i:i + batch].to(device)
        with autocast(device):
            out = model(xb).float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        correct1 += (top[:, 0] == yb).sum().item()
        correct5 += (top == yb[:, None]).any(dim=1).sum().item()
    n = max(1, len(y))
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "loss": loss_sum / n}


# --------------------------------------------------------------------------- training
def _seed_all(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def prepare_data(bundle: DataBundle, p: Protocol) -> DataBundle:
    return resize_bundle(subset(bundle, per_class=p.train_per_class, val_per_class=p.val_per_class), p.img_size)


StepCallback = Callable[[int, int, int, float], None]  # epoch, step, steps, loss
EpochCallback = Callable[[dict], None]


def train(cfg: EfficientViTConfig, bundle: DataBundle, protocol: Protocol, seed: int = 0,
          checkpoint_dir: str | os.PathLike | None = None, threads: int | None = None,
          on_step: StepCallback | None = None, on_epoch: EpochCallback | None = None,
          prepared: bool = False, lock: bool = True, device: str = "cpu") -> TrainResult:
    """Train ``cfg`` (resized to the protocol and dataset) and evaluate it every epoch.

    ``device``: ``cpu`` (fp32) or ``cuda[:N]`` (fp16 autocast with loss scaling); see
    :func:`resolve_device`. Deterministic for a seed on CPU: every epoch reseeds all generators
    from (seed, epoch), so an interrupted run resumed from its per-epoch checkpoint gives the
    same result. A NaN or infinite loss ends the run with ``status='failed'`` and the reason,
    never a zero accuracy.
    """
    p = protocol
    data = bundle if prepared else prepare_data(bundle, p)
    if len(data.train_y) < 2:
        raise UserError(f"{data.name}: fewer than 2 training images after subsetting")
    cfg = cfg.with_overrides(num_classes=data.num_classes, in_chans=data.in_chans, img_size=p.img_size).validate()
    threads = threads or int(os.environ.get("EVIT_TRAIN_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = resolve_device(device)
    result = TrainResult(status="ok", seed=seed, protocol=p.name, dataset=data.name, threads=threads, device=device)

    _seed_all(seed)
    model = efficientvit.build(cfg).to(device)
    scaler = torch.amp.GradScaler("cuda") if device.startswith("cuda") else None
    batch = min(p.batch_size, len(data.train_y) - len(data.train_y) % 2)
    steps_per_epoch = max(1, len(data.train_y) // batch)
    total_steps = steps_per_epoch * p.epochs
    lr = p.lr * batch / 512

    # timm's param groups exempt 1-D params, biases and model.no_weight_decay() (attention_biases)
    opt = create_optimizer_v2(model, "adamw", lr=lr, weight_decay=p.weight_decay, eps=1e-8)
    sched = CosineLRScheduler(opt, t_initial=total_steps, lr_min=p.min_lr * batch / 512,
                              warmup_t=int(round(p.warmup_epochs * steps_per_epoch)), warmup_lr_init=p.warmup_lr,
                              warmup_prefix=True, t_in_epochs=False)
    ema = None
    if p.ema_decay:
        ema = ModelEmaV3(model, decay=p.ema_decay)
    augment = BatchAugment(p, data)

    ckpt_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    start_epoch = 0
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("arch_id") != cfg.arch_id() or state.get("protocol") != p.to_dict() or state.get("seed") != seed:
            raise UserError(f"{ckpt_path} belongs to another run (architecture, protocol or seed differ); "
                            "use another --checkpoint-dir or delete it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema"):
            ema.module.load_state_dict(state["ema"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch = state["epoch"] + 1
        result.history = state["history"]
        result.wall_s = state.get("wall_s", 0.0)
        result.images_seen = state.get("images_seen", 0)
        log.info("resuming from %s at epoch %d", ckpt_path, start_epoch)

    train_time = 0.0
    for epoch in range(start_epoch, p.epochs):
        gen = _seed_all(seed * 100_003 + epoch)
        perm = torch.randperm(len(data.train_y), generator=gen)
        t_epoch = time.perf_counter()
        with hostlock.working("training") if lock else contextlib.nullcontext(0.0):
            model.train()
            loss_sum, n_seen = 0.0, 0
            for step in range(steps_per_epoch):
                idx = perm[step * batch:(step + 1) * batch]
                x, target = augment(data.train_x[idx], data.train_y[idx], gen)
                x, target = x.to(device, non_blocking=True), target.to(device, non_blocking=True)
                with autocast(device):
                    out = model(x)
                loss = loss_fn(out.float(), target)
                if not torch.isfinite(loss):
                    result.status = "failed"
                    result.reason = f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: training diverged"
                    result.wall_s += time.perf_counter() - t_epoch
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
            metrics = evaluate(model, data.val_x, data.val_y, data.mean, data.std, p.eval_batch, device)
        train_time += t_train
        result.images_seen += n_seen
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, n_seen), "val_top1": metrics["top1"],
                 "val_top5": metrics["top5"], "val_loss": metrics["loss"], "lr": opt.param_groups[0]["lr"],
                 "seconds": time.perf_counter() - t_epoch, "train_images_per_s": n_seen / t_train}
        if ema is not None:
            entry["ema_val_top1"] = evaluate(ema.module, data.val_x, data.val_y, data.mean, data.std, p.eval_batch,
                                             device)["top1"]
        result.history.append(entry)
        result.wall_s += entry["seconds"]
        if on_epoch:
            on_epoch(entry)
        if ckpt_path:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"arch_id": cfg.arch_id(), "config": cfg.to_dict(), "protocol": p.to_dict(), "seed": seed,
                        "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "ema": ema.module.state_dict() if ema is not None else None, "history": result.history,
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "wall_s": result.wall_s, "images_seen": result.images_seen}, tmp)
            tmp.replace(ckpt_path)  # atomic: a kill never leaves half a checkpoint

    last = result.history[-1] if result.history else {}
    # the paper reports the non-EMA model's accuracy; the EMA figure is in the history
    result.top1, result.top5, result.val_loss = last.get("val_top1"), last.get("val_top5"), last.get("val_loss")
    result.train_images_per_s = result.images_seen / train_time if train_time > 0 else last.get("train_images_per_s")
    result.model, result.config = model, cfg
    return result


def save_model(path: str | os.PathLike, model: torch.nn.Module, cfg: EfficientViTConfig, extra: dict | None = None) -> Path:
    """A checkpoint that :func:`efficientvit.load_model` reads back: config + state dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # loadable on any machine
    torch.save({"config": cfg.to_dict(), "state_dict": state, **(extra or {})}, path)
    return path

