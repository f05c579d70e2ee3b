"""CIFAR-10 and CIFAR-100 from their python-pickle folders (``cifar-10-batches-py``,
``cifar-100-python``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .bundle import DataBundle, data_roots, make_bundle


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
                return make_bundle(which, tx, ty, vx, vy, n)
    raise DataError(f"{which}: no {folder_name} folder with {', '.join(train_files + test_files)} in "
                    + ", ".join(str(t) for t in tried[:4]) + "; download the python version of the dataset and pass --data-dir")
