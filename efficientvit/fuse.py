"""Deploy mode: a BN-folded copy of a model for inference."""

from __future__ import annotations

import copy

import torch
from torch import nn


def _fuse_children(module: nn.Module) -> None:
    for name, child in module.named_children():
        fuse_fn = getattr(child, "fuse", None)
        new = fuse_fn() if callable(fuse_fn) else child
        _fuse_children(new)
        if new is not child:
            setattr(module, name, new)


@torch.no_grad()
def fuse(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy with every BatchNorm folded into the conv or linear before it.

    Also folds the identity of residual depthwise convs into their kernels, the attention scale
    into the Q depthwise convs, and gathers attention biases once. Outputs equal the unfused
    model's in eval mode (within float rounding). LayerNorm cannot be folded and stays.
    The input model is left untouched.
    """
    fused = copy.deepcopy(model).eval()
    _fuse_children(fused)
    return fused


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
