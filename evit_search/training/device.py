"""The training device: resolved from ``--device`` once, with its precision."""

from __future__ import annotations

import contextlib

import torch

from ..errors import UserError


def resolve_device(name: str | None) -> str:
    """``auto`` (or None): the GPU when there is one, else the CPU. ``cuda`` without a GPU is a
    user error, not a silent fall-back to hours of CPU training."""
    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device={name}: no CUDA GPU on this machine; use --device cpu (or auto)")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= count):
            raise UserError(f"--device={name}: this machine has cuda:0 to cuda:{count - 1}")
        return name
    raise UserError(f"--device={name!r} is not one of auto, cpu, cuda, cuda:N")


PRECISIONS = ("fp32", "amp")


def check_precision(precision: str, device: str) -> str:
    """``fp32`` (the official recipe trains in fp32) or ``amp`` (fp16 autocast with loss scaling,
    GPU only: faster, and not what the paper trained with)."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "amp" and not device.startswith("cuda"):
        raise UserError(f"--amp needs a CUDA device; training on {device} is fp32")
    return precision


def autocast(device: str, enabled: bool = True):
    """fp16 autocast on the GPU when ``enabled`` (AMP training; evaluation, as the official
    eval); nothing on the CPU, which keeps CPU runs fp32 and bit-reproducible."""
    if enabled and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
