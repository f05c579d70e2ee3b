"""Datasets behind one interface (``--data``), held in memory as uint8 tensors.

``fashion-mnist`` (default), ``cifar10``, ``cifar100``, ``imagefolder:PATH``, ``digits`` and
``synthetic``. Every loader returns a :class:`DataBundle` with train and val splits as uint8
tensors (N, C, H, W), the dataset's own normalisation statistics (computed on the train split) and
its class names where it has them. CIFAR and user folders have their own modules (``cifar``,
``imagefolder``); the record and what loaders share are in ``bundle``.

Grey datasets stay 1-channel: the candidate is built with ``in_chans=1`` (its stem's first conv
takes one channel), which is cheaper than replicating to 3 channels and changes the FLOPs by
under 0.1 %. Resizing to the protocol's resolution happens once, in :func:`resize_bundle`.
"""

from __future__ import annotations

import gzip
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .bundle import DataBundle, data_roots, fixed_split, make_bundle
from .cifar import load_cifar
from .imagefolder import load_imagefolder

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH", "digits", "synthetic")
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# label order of the IDX files (Xiao et al. 2017, the dataset's README)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


# --------------------------------------------------------------------------- IDX (Fashion-MNIST)
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed): magic, dims, then the payload, big-endian."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic)")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.get(data[2])
    if dtype is None:
        raise DataError(f"{path}: unknown IDX type 0x{data[2]:02x}")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"{path}: payload has {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def _find_fashion(root: Path) -> dict[str, Path] | None:
    for folder in (root / "fashion-mnist", root / "fashion_mnist", root):
        found = {}
        for key, stem in FASHION_FILES.items():
            for cand in (folder / f"{stem}.gz", folder / stem):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == 4:
            return found
    return None


def load_fashion_mnist(root: str | None = None) -> DataBundle:
    tried = data_roots(root)
    for r in tried:
        files = _find_fashion(r)
        if files:
            tx = torch.from_numpy(read_idx(files["train_images"]).copy())[:, None]
            ty = torch.from_numpy(read_idx(files["train_labels"]).astype(np.int64))
            vx = torch.from_numpy(read_idx(files["val_images"]).copy())[:, None]
            vy = torch.from_numpy(read_idx(files["val_labels"]).astype(np.int64))
            return make_bundle("fashion-mnist", tx, ty, vx, vy, 10, FASHION_CLASSES)
    raise DataError(
        "fashion-mnist not found in " + ", ".join(str(r) for r in tried)
        + "; install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or on a machine that is online "
        "run `evit-search data fetch fashion-mnist`, or pass --data-dir/EVIT_DATA pointing at the IDX files"
    )


def fetch_fashion_mnist(dest: str | None = None) -> Path:
    """Download the canonical Fashion-MNIST IDX files (needs a network)."""
    folder = Path(dest) if dest else Path.home() / ".cache" / "evit-search" / "data" / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FASHION_FILES.values():
        target = folder / f"{stem}.gz"
        if target.exists():
            continue
        try:
            urllib.request.urlretrieve(FASHION_URL + f"{stem}.gz", target)
        except OSError as e:
            target.unlink(missing_ok=True)
            raise DataError(f"could not download {FASHION_URL}{stem}.gz ({e}); install `dataset-fashion-mnist` instead") from None
    return folder


# --------------------------------------------------------------------------- small sets for tests
def load_digits() -> DataBundle:
    from sklearn.datasets import load_digits as sk_digits  # scikit-learn: a second to import, for the digits set only

    d = sk_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8))[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
    tx, ty, vx, vy = fixed_split(x, y, 0.2)
    return make_bundle("digits", tx, ty, vx, vy, 10, tuple(str(i) for i in range(10)))


def make_synthetic(n_train: int = 512, n_val: int = 128, num_classes: int = 4, resolution: int = 32,
                   in_chans: int = 1, seed: int = 0) -> DataBundle:
    """Deterministic, learnable images: class k is a grating of frequency 1.5 + 1.5k cycles at a
    random angle and phase, plus noise. Flips and mild crops keep the class."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(-1, 1, resolution)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    def make(n):
        y = torch.randint(0, num_classes, (n,), generator=g)
        freq = (1.5 + 1.5 * y.float()) * torch.pi
        angle = torch.rand(n, generator=g) * torch.pi
        phase = torch.rand(n, generator=g) * 2 * torch.pi
        proj = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
        img = 0.5 + 0.4 * torch.sin(proj * freq[:, None, None] + phase[:, None, None])
        img = img[:, None].expand(n, in_chans, resolution, resolution) + 0.1 * torch.randn(n, in_chans, resolution, resolution, generator=g)
        return (img.clamp(0, 1) * 255).round().to(torch.uint8), y

    tx, ty = make(n_train)
    vx, vy = make(n_val)
    return make_bundle("synthetic", tx, ty, vx, vy, num_classes)


# --------------------------------------------------------------------------- entry points
def load_dataset(spec: str, data_dir: str | None = None, resolution: int | None = None,
                 max_classes: int | None = None, per_class: int | None = None) -> DataBundle:
    """``spec`` is one of DATASETS. ``resolution`` only matters for imagefolder (decoded once)."""
    if spec == "fashion-mnist":
        bundle = load_fashion_mnist(data_dir)
    elif spec in ("cifar10", "cifar100"):
        bundle = load_cifar(spec, data_dir)
    elif spec.startswith("imagefolder:"):
        return load_imagefolder(spec.split(":", 1)[1], resolution or 224, max_classes, per_class)
    elif spec == "digits":
        bundle = load_digits()
    elif spec == "synthetic":
        bundle = make_synthetic()
    else:
        raise DataError(f"--data={spec!r} is not one of {', '.join(DATASETS)}")
    return subset(bundle, max_classes, per_class)


def subset(bundle: DataBundle, max_classes: int | None = None, per_class: int | None = None) -> DataBundle:
    """Keep the first ``max_classes`` classes and at most ``per_class`` train images per class
    (the held-out split keeps all of its images of those classes), deterministically (first
    ones in file order)."""
    if not (max_classes or per_class):
        return bundle

    def keep(x, y, limit):
        mask = torch.ones(len(y), dtype=torch.bool)
        if max_classes:
            mask &= y < max_classes
        if limit:
            counts = torch.zeros(int(y.max()) + 1, dtype=torch.long)
            sel = torch.zeros(len(y), dtype=torch.bool)
            for i in torch.nonzero(mask).flatten().tolist():
                c = int(y[i])
                if counts[c] < limit:
                    counts[c] += 1
                    sel[i] = True
            mask = sel
        return x[mask], y[mask]

    tx, ty = keep(bundle.train_x, bundle.train_y, per_class)
    vx, vy = keep(bundle.val_x, bundle.val_y, None)
    n = min(bundle.num_classes, max_classes) if max_classes else bundle.num_classes
    names = bundle.class_names[:n] if bundle.class_names is not None else None
    return replace(bundle, train_x=tx, train_y=ty, val_x=vx, val_y=vy, num_classes=n, class_names=names)


def resize_bundle(bundle: DataBundle, resolution: int) -> DataBundle:
    """Resize both splits to ``resolution`` once (bilinear, antialiased when shrinking)."""
    if bundle.resolution == resolution:
        return bundle

    def rs(x):
        out = []
        for chunk in x.split(4096):
            y = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=resolution < chunk.shape[-1])
            out.append(y.round_().clamp_(0, 255).to(torch.uint8))
        return torch.cat(out) if out else x

    return replace(bundle, train_x=rs(bundle.train_x), val_x=rs(bundle.val_x),
                   stored_resolution=bundle.stored_resolution or bundle.resolution)
