"""Train-time augmentation on uint8 tensor batches (crops with ``roi_align``, flips, erasing,
mixup) so that small machines spend their time in the model, not in PIL; RandAugment, which timm
implements on PIL images, runs per sample only in the protocols that ask for it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import Mixup
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from torchvision.ops import roi_align

from .data import DataBundle
from .protocols import Protocol


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float], gen: torch.Generator,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Per-sample random resized crop of a float batch back to its own size, in one roi_align."""
    n, _, h, w = x.shape
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=gen) * h * w
    logr = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(logr)
    cw = torch.sqrt(area * r).clamp(1, w)
    ch = torch.sqrt(area / r).clamp(1, h)
    x0 = torch.rand(n, generator=gen) * (w - cw)
    y0 = torch.rand(n, generator=gen) * (h - ch)
    boxes = torch.stack([torch.arange(n, dtype=torch.float), x0, y0, x0 + cw, y0 + ch], 1)
    return roi_align(x, boxes, output_size=(h, w), spatial_scale=1.0, sampling_ratio=2, aligned=True)


class BatchAugment:
    """Train-time augmentation of uint8 batches -> normalised float batches and soft targets."""

    def __init__(self, p: Protocol, bundle: DataBundle):
        self.p = p
        self.mean = torch.tensor(bundle.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(bundle.std).view(1, -1, 1, 1)
        self.num_classes = bundle.num_classes
        self.mixup = None
        if p.mixup > 0 or p.cutmix > 0:
            self.mixup = Mixup(mixup_alpha=p.mixup, cutmix_alpha=p.cutmix, prob=p.mix_prob, switch_prob=0.5,
                               mode="batch", label_smoothing=p.label_smoothing, num_classes=bundle.num_classes)
        self.erase = None
        if p.random_erasing > 0:
            self.erase = RandomErasing(probability=p.random_erasing, mode="pixel", device="cpu")
        self.randaug = None
        if p.rand_augment:
            fill = tuple(int(m * 255) for m in bundle.mean) if bundle.in_chans == 3 else int(bundle.mean[0] * 255)
            self.randaug = rand_augment_transform(p.rand_augment, {"translate_const": int(p.img_size * 0.45),
                                                                  "img_mean": fill})

    def _rand_augment(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for img in x:
            arr = img.permute(1, 2, 0).numpy()
            pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
            res = np.asarray(self.randaug(pil), dtype=np.uint8)
            out.append(torch.from_numpy(res.copy()).reshape(img.shape[1], img.shape[2], -1).permute(2, 0, 1))
        return torch.stack(out)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
        if self.randaug is not None:
            x = self._rand_augment(x)
        x = x.float().div_(255)
        if self.p.crop_scale[0] < 1.0:
            x = random_resized_crop(x, self.p.crop_scale, gen)
        if self.p.hflip > 0:
            flip = torch.rand(len(x), generator=gen) < self.p.hflip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = (x - self.mean) / self.std
        if self.erase is not None:
            x = self.erase(x)
        if self.mixup is not None:
            x, target = self.mixup(x, y)
        elif self.p.label_smoothing > 0:
            off = self.p.label_smoothing / self.num_classes
            target = torch.full((len(y), self.num_classes), off).scatter_(1, y[:, None], 1 - self.p.label_smoothing + off)
        else:
            target = y
        return x, target


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.dim() == 2:  # soft targets (mixup / label smoothing)
        return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()
    return F.cross_entropy(logits, target)
