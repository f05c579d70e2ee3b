"""The three splits a training run sees, fixed whatever the seed:

- ``train``: the training images of the protocol's subset (the first ``train_per_class`` of each
  class in file order, after the validation images are taken out);
- ``val``: ``val_per_class`` images per class held out from the dataset's training split by a
  fixed draw -- the split candidates are **selected** on (objective values, fronts);
- ``test``: the dataset's own held-out split (Fashion-MNIST's t10k, an image folder's ``val/``),
  optionally the first ``test_per_class`` of each class -- evaluated once at the end and
  **reported**, never selected on.

A seed changes what a seed should change (initialisation, data order, augmentation), never the
splits: they are drawn with :data:`SPLIT_SEED`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import torch

from .bundle import DataBundle, ImageShape
from .data import resize_bundle
from .protocols import Protocol

SPLIT_SEED = 20230601  # the draw of the validation images; fixed so every run and seed selects on the same images
MAX_VAL_FRACTION = 0.2  # never hold out more than a fifth of a class


@dataclass
class Splits(ImageShape):
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W) at the protocol's resolution
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # of the dataset's training split
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    def fingerprint(self) -> str:
        """A short id of the images and labels of every split (not only their sizes: two subsets
        of one size differ), so that a checkpoint made on other data is never resumed from.
        Labels are hashed whole; images through at most 256 of each split, evenly spaced,
        which reads a few MB whatever the dataset's size."""
        h = hashlib.sha256()
        for x, y in ((self.train_x, self.train_y), (self.val_x, self.val_y), (self.test_x, self.test_y)):
            h.update(repr((tuple(x.shape), self.num_classes, self.class_names)).encode())
            h.update(y.numpy().tobytes())
            pick = torch.linspace(0, len(y) - 1, steps=min(256, len(y))).long() if len(y) else torch.empty(0).long()
            h.update(x[pick].contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        n = self.sizes()
        return (f"{self.name}: {n['train']} train, {n['val']} val (held out from train, fixed), {n['test']} test, "
                f"{self.num_classes} classes, at {self.in_chans}x{self.resolution}x{self.resolution}")


def _first_per_class(y: torch.Tensor, idx: torch.Tensor, limit: int | None) -> torch.Tensor:
    """The first ``limit`` indices of each class among ``idx`` (in order); all when None."""
    if limit is None:
        return idx
    keep, counts = [], {}
    for i in idx.tolist():
        c = int(y[i])
        if counts.get(c, 0) < limit:
            counts[c] = counts.get(c, 0) + 1
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def split_indices(y: torch.Tensor, val_per_class: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices of a training split: ``val_per_class`` of each class (at most a fifth
    of it) drawn with :data:`SPLIT_SEED`; the rest, in file order, for training."""
    if not val_per_class:
        return torch.arange(len(y)), torch.empty(0, dtype=torch.long)
    g = torch.Generator().manual_seed(SPLIT_SEED)
    val = []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        k = min(val_per_class, int(len(members) * MAX_VAL_FRACTION))
        val.append(members[torch.randperm(len(members), generator=g)[:k]])
    val_idx = torch.sort(torch.cat(val)).values if val else torch.empty(0, dtype=torch.long)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[val_idx] = False
    return torch.nonzero(mask).flatten(), val_idx


def prepare_data(bundle: DataBundle, p: Protocol) -> Splits:
    """The protocol's splits of ``bundle``, resized to the protocol's resolution once."""
    train_idx, val_idx = split_indices(bundle.train_y, p.val_per_class)
    train_idx = _first_per_class(bundle.train_y, train_idx, p.train_per_class)
    test_idx = _first_per_class(bundle.val_y, torch.arange(len(bundle.val_y)), p.test_per_class)
    parts = replace(bundle, train_x=bundle.train_x[train_idx], train_y=bundle.train_y[train_idx],
                    val_x=bundle.val_x[test_idx], val_y=bundle.val_y[test_idx])
    held = replace(bundle, train_x=bundle.train_x[val_idx], train_y=bundle.train_y[val_idx], val_x=bundle.val_x[:0],
                   val_y=bundle.val_y[:0])
    parts, held = resize_bundle(parts, p.img_size), resize_bundle(held, p.img_size)
    return Splits(bundle.name, parts.train_x, parts.train_y, held.train_x, held.train_y, parts.val_x, parts.val_y,
                  bundle.num_classes, bundle.mean, bundle.std, bundle.class_names)
