"""Load EfficientViT weights from timm's or the official repository's state-dict layout."""

from __future__ import annotations

import math
import re
from typing import Mapping

import torch

from .errors import CheckpointError
from .model import bias_index

SOURCES = ("timm", "official")


def _unwrap(state_dict: Mapping) -> dict[str, torch.Tensor]:
    """Accept a raw state dict or a training checkpoint that wraps it (``model``/``state_dict``)."""
    for key in ("model", "state_dict", "model_ema"):
        if key in state_dict and isinstance(state_dict[key], Mapping):
            state_dict = state_dict[key]
            break
    out = {}
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k.removeprefix("module.")] = v
    return out


def _check_bias_idxs(key: str, idxs: torch.Tensor) -> None:
    """The index buffers are derived data; check they match ours before dropping them."""
    n = idxs.shape[0]
    r = math.isqrt(n)
    if idxs.dim() != 2 or r * r != n or not torch.equal(idxs.long(), bias_index(r)):
        raise CheckpointError(
            f"{key} does not follow the |drow|*r+|dcol| bias layout this implementation uses; "
            "the checkpoint comes from a different model"
        )


_OFFICIAL_STAGE = re.compile(r"^blocks(\d+)\.(\d+)\.(.*)$")
_OFFICIAL_STEM = {"0": "conv1", "2": "conv2", "4": "conv3", "6": "conv4"}
_OFFICIAL_DOWN = {0: "res1", 1: "patchmerge", 2: "res2"}


def _official_key(key: str) -> str:
    """One official key -> ours, e.g. blocks2.1.conv1.c.weight -> stages.1.downsample.patchmerge.conv1.conv.weight."""
    m = _OFFICIAL_STAGE.match(key)
    if m:
        n, k, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        s = n - 1
        if n == 1:  # stage 1 has no subsample block in front
            key = f"stages.0.blocks.{k}.{rest}"
        elif k < 3:
            key = f"stages.{s}.downsample.{_OFFICIAL_DOWN[k]}.{rest}"
        else:
            key = f"stages.{s}.blocks.{k - 3}.{rest}"
    elif key.startswith("patch_embed."):
        idx, rest = key.split(".", 2)[1:]
        if idx not in _OFFICIAL_STEM:
            raise CheckpointError(f"unexpected stem key {key!r} in an official checkpoint")
        key = f"patch_embed.{_OFFICIAL_STEM[idx]}.{rest}"
    # Conv2d_BN's conv is "c", BN_Linear's linear is "l"
    key = re.sub(r"\.c\.(weight|bias)$", r".conv.\1", key)
    return re.sub(r"\.l\.(weight|bias)$", r".linear.\1", key)


def convert_state_dict(state_dict: Mapping, source: str = "timm") -> dict[str, torch.Tensor]:
    """Map a timm (``efficientvit_msra``) or official (microsoft/Cream) state dict to ours.

    Handles the official ``blocks1/2/3`` grouping, ``c``/``l`` names, the persistent
    ``attention_bias_idxs`` buffers (checked, then dropped), 1x1 conv weights stored as 2-D, a
    ``model`` wrapper and a ``module.`` prefix. ``head_dist.*`` is kept: build the model with
    ``distillation=True`` to load it, or drop those keys for a single head.
    """
    if source not in SOURCES:
        raise CheckpointError(f"source={source!r} is not one of {', '.join(SOURCES)}")
    sd = _unwrap(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("attention_bias_idxs"):
            _check_bias_idxs(key, value)
            continue
        new = _official_key(key) if source == "official" else key
        if new.endswith("conv.weight") and value.dim() == 2:
            value = value[:, :, None, None]  # 1x1 conv stored as a matrix
        if new in out:
            raise CheckpointError(f"two keys map to {new!r}; is source={source!r} right?")
        out[new] = value
    return out


def load_checkpoint(model: torch.nn.Module, state_dict: Mapping, source: str = "timm") -> torch.nn.Module:
    """Convert and load strictly, raising CheckpointError with the missing/unexpected keys."""
    converted = convert_state_dict(state_dict, source)
    own = model.state_dict()
    missing = [k for k in own if k not in converted]
    unexpected = [k for k in converted if k not in own]
    wrong = [f"{k} {tuple(converted[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in converted and converted[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        parts = [f"{label}: {head(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)) if keys]
        raise CheckpointError("checkpoint does not fit the model; " + "; ".join(parts))
    model.load_state_dict(converted)
    return model


def load_model(path, map_location: str = "cpu") -> torch.nn.Module:
    """Build and load a checkpoint saved by ``evit-search train``/``export``: a dict with the
    ``config`` (EfficientViTConfig.to_dict()) and the ``state_dict``."""
    from .config import EfficientViTConfig
    from .model import build

    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, Mapping) or "config" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} has no 'config' and 'state_dict': not an evit-search checkpoint")
    model = build(EfficientViTConfig.from_dict(ckpt["config"]))
    return load_checkpoint(model, ckpt["state_dict"], source="timm").eval()
