"""The record every loader returns (:class:`DataBundle`) and the small helpers they share: the
dataset's own statistics, a fixed split for data without a validation set, the folders searched.

A loader's warnings (data it leaves out, a split it makes up) go to ``logging`` as one line each:
the command line shows them on stderr before training starts, and library callers can route them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


class ImageShape:
    """Channels and side length of images stored as ``train_x`` (uint8 N, C, H, W)."""

    train_x: torch.Tensor

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])


@dataclass
class DataBundle(ImageShape):
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # label i's name, saved with a checkpoint so its outputs can be read; None where the data has none
    class_names: tuple[str, ...] | None = None
    stored_resolution: int | None = None  # the size as loaded, once resize_bundle has changed it

    def describe(self, img_size: int | None = None) -> str:
        """One line: sizes and classes, and the resolution it trains at (``img_size``, or the
        resized one) beside the stored one when they can differ."""
        stored = self.stored_resolution or self.resolution
        trained = img_size or self.resolution
        c = self.in_chans
        size = (f"stored {c}x{stored}x{stored}, trained at {c}x{trained}x{trained}"
                if img_size or trained != stored else f"{c}x{stored}x{stored}")
        # the dataset's own held-out split is what runs report as "test" (they select on images held out from train)
        return f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} test, {self.num_classes} classes, {size}"


def _stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.float().div_(255)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def make_bundle(name, train_x, train_y, val_x, val_y, num_classes, class_names=None) -> DataBundle:
    """A bundle whose normalisation statistics are computed on its train split."""
    mean, std = _stats(train_x)
    names = tuple(class_names) if class_names is not None else None
    return DataBundle(name, train_x.contiguous(), train_y.long(), val_x.contiguous(), val_y.long(), num_classes,
                      mean, std, names)


def fixed_split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int = 0):
    """A fixed (seeded, stratification-free) train/val split for datasets without one."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n_val = max(1, round(len(y) * val_fraction))
    return x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]


def name_some(names, most: int = 5) -> str:
    """``'a', 'b' and 3 more``: a list of names that keeps a message on one line."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def data_roots(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where datasets are looked for, in order."""
    roots = []
    if explicit:
        roots.append(Path(explicit))
    if os.environ.get("EVIT_DATA"):
        roots.append(Path(os.environ["EVIT_DATA"]))
    roots.append(Path.home() / ".cache" / "evit-search" / "data")
    roots.append(Path("/usr/share/datasets"))
    return roots
