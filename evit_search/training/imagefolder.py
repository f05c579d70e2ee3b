"""A user's own images in ImageNet-style folders: ``PATH/train/<class>/*.jpg`` and
``PATH/val/<class>/*.jpg`` (or the class folders directly under ``PATH``, without a val split).

What such a folder gets, case by case, each in one line (errors stop before training, warnings go
to ``logging`` and the command line shows them on stderr):

- a class folder with no images: a warning, and the class is left out so labels stay dense (an
  empty folder is a common leftover, and training it would only add an output nothing teaches);
  an error when no class is left;
- a val class that train lacks: an error naming it, because its images would be scored against a
  label the model never had (or silently dropped, which hides data the user meant to measure);
- a train class without val images: a warning naming it, because training is still sound but its
  accuracy cannot be measured (and no val images at all is an error: there is nothing to score);
- no ``val/``: a warning that 10 % of train (fixed seed) is held out for validation, because the
  numbers then mean something else than on a val set the user chose;
- extensions match in any case (``.JPG``, ``.Png``); hidden files and folders (``.DS_Store``,
  macOS ``._x.jpg``, ``.ipynb_checkpoints``) are not data and are skipped.

The class names, in label order, go into the bundle so that they are saved with the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .bundle import DataBundle, fixed_split, make_bundle, name_some

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})  # compared with the suffix lower-cased
VAL_FRACTION = 0.1


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def list_images(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted), for every visible sub-folder of ``folder``."""
    return {d.name: sorted(p for p in d.iterdir() if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTS)
            for d in sorted(folder.iterdir()) if d.is_dir() and _visible(d)}


def decode(path: Path, resolution: int) -> torch.Tensor:
    """One image as uint8 (3, resolution, resolution): shorter side resized, then centre-cropped."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            s = resolution / min(im.size)
            size = (max(resolution, round(im.width * s)), max(resolution, round(im.height * s)))
            im = im.resize(size, Image.BICUBIC)
            left, top = (im.width - resolution) // 2, (im.height - resolution) // 2
            im = im.crop((left, top, left + resolution, top + resolution))
            return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)  # HWC -> CHW
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"imagefolder: cannot read {path}: {e}") from None


def _read(files: dict[str, list[Path]], classes: list[str], limit: int | None, resolution: int):
    xs, ys = [], []
    for label, c in enumerate(classes):
        for p in files.get(c, [])[:limit]:
            xs.append(decode(p, resolution))
            ys.append(label)
    if not xs:
        return torch.empty(0, 3, resolution, resolution, dtype=torch.uint8), torch.empty(0, dtype=torch.long)
    return torch.stack(xs), torch.tensor(ys)


def _train_classes(train_dir: Path, train_files: dict[str, list[Path]]) -> list[str]:
    """The class folders that hold images, warning about those that do not."""
    if not train_files:
        raise DataError(f"imagefolder: no class folders in {train_dir}; expected {train_dir}/<class>/*.jpg")
    classes = [c for c, f in train_files.items() if f]
    if not classes:
        raise DataError(f"imagefolder: no images ({', '.join(sorted(IMAGE_EXTS))}, any case) under {train_dir}")
    empty = [c for c, f in train_files.items() if not f]
    if empty:
        log.warning("imagefolder: class folder(s) %s in %s hold no images: left out, %d classes remain",
                    name_some(empty), train_dir, len(classes))
    return classes


def load_imagefolder(path: str, resolution: int = 224, max_classes: int | None = None,
                     per_class: int | None = None, val_per_class: int | None = None) -> DataBundle:
    """Images are resized (shorter side, then centre crop) to ``resolution`` once at load time;
    ``max_classes``/``per_class`` keep a subset (the first classes and files in sorted order)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"imagefolder: {root} is not a folder; expected {root}/train/<class>/*.jpg")
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir():
        if val_dir.is_dir():  # else val/ would be read as a class of train
            raise DataError(f"imagefolder: {root} has val/ but no train/; expected {root}/train/<class>/*.jpg")
        train_dir = root
    train_files = list_images(train_dir)
    classes = _train_classes(train_dir, train_files)
    val_files = list_images(val_dir) if val_dir.is_dir() else None
    if val_files is not None:
        unknown = [c for c, f in val_files.items() if f and c not in classes]
        if unknown:
            raise DataError(f"imagefolder: val class(es) {name_some(unknown)} in {val_dir} have no training images "
                            f"in {train_dir}, so their labels would be wrong; add training images or remove them "
                            "from val/")
    if max_classes:
        classes = classes[:max_classes]

    tx, ty = _read(train_files, classes, per_class, resolution)
    if val_files is None:
        tx, ty, vx, vy = fixed_split(tx, ty, VAL_FRACTION)
        log.warning("imagefolder: no val/ folder in %s: %d of the %d training images (%.0f %%, fixed seed) "
                    "are held out for validation", root, len(vy), len(ty) + len(vy), 100 * VAL_FRACTION)
        where = f"the {100 * VAL_FRACTION:.0f} % of train held out"
    else:
        vx, vy = _read(val_files, classes, val_per_class, resolution)
        if not len(vy):
            raise DataError(f"imagefolder: no images in {val_dir} for the {len(classes)} classes trained, so accuracy "
                            "cannot be measured; add val images or remove val/ to hold out "
                            f"{100 * VAL_FRACTION:.0f} % of train")
        where = str(val_dir)
    unmeasured = [classes[i] for i in sorted(set(range(len(classes))) - set(vy.tolist()))]
    if unmeasured:
        log.warning("imagefolder: train class(es) %s have no images in %s: their accuracy cannot be measured",
                    name_some(unmeasured), where)
    return make_bundle(f"imagefolder:{root.resolve().name}", tx, ty, vx, vy, len(classes), classes)
