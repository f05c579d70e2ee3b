"""Datasets behind one interface (``--data``), held in memory as uint8 tensors.

``fashion-mnist`` (default), ``cifar10``, ``cifar100``, ``imagefolder:PATH``, ``digits`` and
``synthetic``. Every loader returns a :class:`DataBundle` with train and val splits as uint8
tensors (N, C, H, W) and the dataset's own normalisation statistics (computed on the train split).

Grey datasets stay 1-channel: the candidate is built with ``in_chans=1`` (its stem's first conv
takes one channel), which is cheaper than replicating to 3 channels and changes the FLOPs by
under 0.1 %. Resizing to the protocol's resolution happens once, in :func:`resize_bundle`.
"""

from __future__ import annotations

import gzip
import os
import pickle
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH", "digits", "synthetic")
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


@dataclass
class DataBundle:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])

    def describe(self) -> str:
        return (f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} val, {self.num_classes} classes, "
                f"{self.in_chans}x{self.resolution}x{self.resolution}")


# --------------------------------------------------------------------------- helpers
def _stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.float().div_(255)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _bundle(name, train_x, train_y, val_x, val_y, num_classes) -> DataBundle:
    mean, std = _stats(train_x)
    return DataBundle(name, train_x.contiguous(), train_y.long(), val_x.contiguous(), val_y.long(), num_classes, mean, std)


def _fixed_split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int = 0):
    """A fixed (seeded, stratification-free) train/val split for datasets without one."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n_val = max(1, int(round(len(y) * val_fraction)))
    return x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]


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
            return _bundle("fashion-mnist", tx, ty, vx, vy, 10)
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


# --------------------------------------------------------------------------- CIFAR (python pickle folders)
def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def load_cifar(which: str, root: str | None = None) -> DataBundle:
    folder_name, train_files, test_files, label_key, n = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
        "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
    }[which]
    tried = []
    for r in data_roots(root):
        for folder in (r / folder_name, r / which / folder_name, r):
            tried.append(folder)
            if all((folder / f).is_file() for f in train_files + test_files):
                def load(files):
                    xs, ys = [], []
                    for f in files:
                        d = _unpickle(folder / f)
                        xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                        ys.append(np.asarray(d[label_key], dtype=np.int64))
                    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

                tx, ty = load(train_files)
                vx, vy = load(test_files)
                return _bundle(which, tx, ty, vx, vy, n)
    raise DataError(f"{which}: no {folder_name} folder with {', '.join(train_files + test_files)} in "
                    + ", ".join(str(t) for t in tried[:4]) + "; download the python version of the dataset and pass --data-dir")


# --------------------------------------------------------------------------- ImageNet-style folders
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG"}


def load_imagefolder(path: str, resolution: int = 224, max_classes: int | None = None,
                     per_class: int | None = None, val_per_class: int | None = None) -> DataBundle:
    """``PATH/train/<class>/*.jpg`` and ``PATH/val/<class>/*.jpg`` (or a 10 % fixed split when
    there is no val folder). Images are resized (shorter side, then centre crop) to
    ``resolution`` once at load time; ``max_classes``/``per_class`` keep a subset."""
    root = Path(path)
    train_dir = root / "train" if (root / "train").is_dir() else root
    if not train_dir.is_dir():
        raise DataError(f"imagefolder: {root} is not a folder; expected {root}/train/<class>/*.jpg")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"imagefolder: no class folders in {train_dir}")
    if max_classes:
        classes = classes[:max_classes]
    index = {c: i for i, c in enumerate(classes)}

    def read(folder: Path, limit: int | None):
        xs, ys = [], []
        for c in classes:
            d = folder / c
            if not d.is_dir():
                continue
            files = sorted(p for p in d.iterdir() if p.suffix in IMAGE_EXTS)[:limit]
            for p in files:
                try:
                    with Image.open(p) as im:
                        im = im.convert("RGB")
                        s = resolution / min(im.size)
                        im = im.resize((max(resolution, round(im.width * s)), max(resolution, round(im.height * s))),
                                       Image.BICUBIC)
                        left, top = (im.width - resolution) // 2, (im.height - resolution) // 2
                        im = im.crop((left, top, left + resolution, top + resolution))
                        xs.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1))
                        ys.append(index[c])
                except OSError as e:
                    raise DataError(f"imagefolder: cannot read {p}: {e}") from None
        if not xs:
            return torch.empty(0, 3, resolution, resolution, dtype=torch.uint8), torch.empty(0, dtype=torch.long)
        return torch.stack(xs), torch.tensor(ys)

    tx, ty = read(train_dir, per_class)
    if len(ty) == 0:
        raise DataError(f"imagefolder: no images ({', '.join(sorted(IMAGE_EXTS))}) under {train_dir}")
    val_dir = root / "val"
    if val_dir.is_dir():
        vx, vy = read(val_dir, val_per_class)
    else:
        tx, ty, vx, vy = _fixed_split(tx, ty, 0.1)
    return _bundle(f"imagefolder:{root.name}", tx, ty, vx, vy, len(classes))


# --------------------------------------------------------------------------- small sets for tests
def load_digits() -> DataBundle:
    from sklearn.datasets import load_digits as sk_digits  # scikit-learn: a second to import, for the digits set only

    d = sk_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8))[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
    tx, ty, vx, vy = _fixed_split(x, y, 0.2)
    return _bundle("digits", tx, ty, vx, vy, 10)


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
    return _bundle("synthetic", tx, ty, vx, vy, num_classes)


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


def subset(bundle: DataBundle, max_classes: int | None = None, per_class: int | None = None,
           val_per_class: int | None = None) -> DataBundle:
    """Keep the first ``max_classes`` classes and at most ``per_class`` train images per class
    (and ``val_per_class`` val images), deterministically (first ones in file order)."""
    if not (max_classes or per_class or val_per_class):
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
    vx, vy = keep(bundle.val_x, bundle.val_y, val_per_class)
    n = min(bundle.num_classes, max_classes) if max_classes else bundle.num_classes
    return replace(bundle, train_x=tx, train_y=ty, val_x=vx, val_y=vy, num_classes=n)


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

    return replace(bundle, train_x=rs(bundle.train_x), val_x=rs(bundle.val_x))
