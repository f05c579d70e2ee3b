"""A user's own images in ImageNet-style folders: ``PATH/train/<class>/*.jpg`` and
``PATH/val/<class>/*.jpg``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .bundle import DataBundle, fixed_split, make_bundle

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
        tx, ty, vx, vy = fixed_split(tx, ty, 0.1)
    return make_bundle(f"imagefolder:{root.name}", tx, ty, vx, vy, len(classes), classes)
