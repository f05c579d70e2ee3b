"""Params and FLOPs, counted with fvcore on the BN-fused model (the paper's convention:
one multiply-add is one FLOP)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass

import torch

import efficientvit
from efficientvit import EfficientViTConfig


@dataclass(frozen=True)
class CostRecord:
    params_m: float
    flops_m: float
    params: int
    flops: int
    input_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """fvcore FLOP count (multiply-adds) for one image of ``input_shape`` (C, H, W)."""
    # fvcore warns once per op it does not count (adds, softmax...); the paper does not count them
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    # fvcore scripts and traces with TorchScript (on import and per count), which torch 2.14+ marks
    # deprecated at every call; the user is not told
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.")
        from fvcore.nn import FlopCountAnalysis  # heavy, and only needed to count

        fa = FlopCountAnalysis(model.eval(), torch.zeros(1, *input_shape))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return int(fa.total())


def count_cost(cfg: EfficientViTConfig, model: torch.nn.Module | None = None) -> CostRecord:
    """Params and FLOPs of the fused (deploy) model at the config's input size."""
    model = model if model is not None else efficientvit.build(cfg)
    fused = efficientvit.fuse(model)
    params = efficientvit.count_params(fused)
    flops = count_flops(fused, (cfg.in_chans, cfg.img_size, cfg.img_size))
    return CostRecord(params_m=params / 1e6, flops_m=flops / 1e6, params=params, flops=flops, input_size=cfg.img_size)
