"""CIFAR-10 and CIFAR-100 from their python-pickle folders (``cifar-10-batches-py``,
``cifar-100-python``), with the class names from their meta files when present.

A batch is a pickled dict. The official archive's were written by Python 2 and have str keys (read
with latin1 for the numpy payload); one re-saved by Python 3 after reading it with
``encoding='bytes'`` has bytes keys (``b'data'``, ``b'labels'``), so keys are decoded first. A
batch that cannot be read is a :class:`DataError` naming the file and what is wrong, never a
traceback: a corrupt download is a user's problem to fix, not a bug."""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .bundle import DataBundle, data_roots, make_bundle, name_some

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    meta_file: str
    names_key: str


LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                           "labels", 10, "batches.meta", "label_names"),
    "cifar100": CifarLayout("cifar-100-python", ("train",), ("test",), "fine_labels", 100, "meta", "fine_label_names"),
}
# what pickle.load raises on a file that is not a pickle or is cut short: the docs name
# UnpicklingError, EOFError, AttributeError, ImportError and IndexError and say others may come
# (a truncated numpy payload is a ValueError, a garbled opcode argument a KeyError or TypeError)
UNREADABLE = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError,
              ValueError, OverflowError, MemoryError)


def _text(v) -> str:
    return v.decode("latin1") if isinstance(v, bytes) else str(v)


def read_pickle_dict(path: Path) -> dict[str, object]:
    """The dict a CIFAR file holds, its keys as str whether they were pickled as str or bytes."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
    except UNREADABLE as e:
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:80] or 'no detail'}); "
                        "the file is corrupt or cut short, download the dataset again") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: holds a {type(d).__name__}, not the dict of a CIFAR batch")
    return {_text(k): v for k, v in d.items()}


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file, checked."""
    d = read_pickle_dict(path)
    missing = [k for k in ("data", label_key) if k not in d]
    if missing:
        raise DataError(f"{path}: no {name_some(missing)} key (it has {name_some(sorted(d))}); "
                        "not a batch of this dataset")
    try:
        x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # rows of 3072 bytes: R, G, B planes
        y = np.asarray(d[label_key], dtype=np.int64).reshape(-1)
    except (ValueError, TypeError, OverflowError) as e:
        raise DataError(f"{path}: 'data' is not rows of 3072 bytes (3x32x32) with integer {label_key!r} "
                        f"({str(e)[:80]})") from None
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"{path}: label {bad} is outside 0..{num_classes - 1}")
    return x, y


def read_class_names(folder: Path, layout: CifarLayout) -> tuple[str, ...] | None:
    """The names in the meta file, or None (with a warning) where it is missing or does not match."""
    path = folder / layout.meta_file
    if not path.is_file():
        log.warning("%s: no %s, so no class names are saved with the checkpoint", folder, layout.meta_file)
        return None
    names = read_pickle_dict(path).get(layout.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != layout.num_classes:
        log.warning("%s: no list of %d %r, so no class names are saved with the checkpoint", path, layout.num_classes,
                    layout.names_key)
        return None
    return tuple(_text(n) for n in names)


def _read_split(folder: Path, names: tuple[str, ...], layout: CifarLayout) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(read_batch(folder / n, layout.label_key, layout.num_classes) for n in names))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def load_cifar(which: str, root: str | None = None) -> DataBundle:
    layout = LAYOUTS[which]
    files = layout.train_files + layout.test_files
    tried = []
    for r in data_roots(root):
        for folder in (r / layout.folder, r / which / layout.folder, r):
            tried.append(folder)
            if all((folder / f).is_file() for f in files):
                tx, ty = _read_split(folder, layout.train_files, layout)
                vx, vy = _read_split(folder, layout.test_files, layout)
                return make_bundle(which, tx, ty, vx, vy, layout.num_classes, read_class_names(folder, layout))
    raise DataError(f"{which}: no {layout.folder} folder with {', '.join(files)} in "
                    + ", ".join(str(t) for t in tried[:4])
                    + "; download the python version of the dataset and pass --data-dir")
