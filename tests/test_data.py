"""Every loader on small fixtures written by the tests."""

import gzip
import logging
import pickle
import struct

import numpy as np
import pytest
import torch

from evit_search.errors import DataError
from evit_search.training.data import FASHION_CLASSES, load_dataset, make_synthetic, read_idx, resize_bundle, subset


def write_idx(path, arr: np.ndarray, compress=True):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.fixture
def fashion_dir(tmp_path):
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (30, 28, 28)))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28)), compress=False)
    write_idx(d / "t10k-labels-idx1-ubyte", np.arange(10) % 10, compress=False)
    return tmp_path


def test_fashion_mnist_from_idx(fashion_dir):
    b = load_dataset("fashion-mnist", str(fashion_dir))
    assert b.train_x.shape == (30, 1, 28, 28) and b.val_x.shape == (10, 1, 28, 28)
    assert b.num_classes == 10 and b.in_chans == 1
    assert b.train_y.tolist() == [i % 10 for i in range(30)]
    assert b.class_names == FASHION_CLASSES and b.class_names[0] == "T-shirt/top" and b.class_names[9] == "Ankle boot"
    expected = b.train_x.float().div(255)
    assert b.mean[0] == pytest.approx(float(expected.mean()), abs=1e-4)  # the dataset's own statistics
    assert b.std[0] == pytest.approx(float(expected.std()), abs=1e-3)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EVIT_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    from evit_search.training import data

    monkeypatch.setattr(data, "data_roots", lambda explicit=None: [tmp_path])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_idx_rejects_garbage(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x08\x08\x08\x08garbage")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(p)


CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_pickle(path, d, byte_keys=False):
    """A pickled dict, its keys as bytes where Python 3 re-saved a batch read with encoding='bytes'."""
    with open(path, "wb") as f:
        pickle.dump({k.encode() if byte_keys else k: v for k, v in d.items()}, f)


def cifar10_dir(tmp_path, byte_keys=False, meta=True):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in CIFAR10_FILES:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 9]}
        write_pickle(d / name, batch, byte_keys)
    if meta:
        names = [n.encode() for n in CIFAR10_NAMES] if byte_keys else CIFAR10_NAMES
        write_pickle(d / "batches.meta", {"label_names": names, "num_vis": 3072}, byte_keys)
    return d


@pytest.mark.parametrize("byte_keys", [False, True], ids=["str-keys", "bytes-keys"])
def test_cifar10_pickle_folder(tmp_path, byte_keys):
    cifar10_dir(tmp_path, byte_keys)
    b = load_dataset("cifar10", str(tmp_path))
    assert b.train_x.shape == (20, 3, 32, 32) and b.val_x.shape == (4, 3, 32, 32) and b.num_classes == 10
    assert len(b.mean) == 3 and b.train_y.tolist()[:4] == [0, 1, 2, 9]
    assert b.class_names == tuple(CIFAR10_NAMES)
    assert subset(b, max_classes=3).class_names == ("airplane", "automobile", "bird")  # names follow --classes


@pytest.mark.parametrize("byte_keys", [False, True], ids=["str-keys", "bytes-keys"])
def test_cifar100_pickle_folder(tmp_path, byte_keys):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name, n in (("train", 6), ("test", 3)):
        write_pickle(d / name, {"data": np.zeros((n, 3072), dtype=np.uint8), "fine_labels": list(range(n)),
                                "coarse_labels": [0] * n}, byte_keys)
    names = [f"c{i}" for i in range(100)]
    write_pickle(d / "meta", {"fine_label_names": [n.encode() for n in names] if byte_keys else names}, byte_keys)
    b = load_dataset("cifar100", str(tmp_path))
    assert b.num_classes == 100 and len(b.train_y) == 6 and b.class_names == tuple(names)


def test_cifar_without_meta_warns_that_no_names_are_saved(tmp_path, caplog):
    cifar10_dir(tmp_path, meta=False)
    with caplog.at_level(logging.WARNING):
        b = load_dataset("cifar10", str(tmp_path))
    assert b.class_names is None
    assert "no batches.meta, so no class names are saved with the checkpoint" in caplog.text


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _garble(path):
    path.write_bytes(b"\x80\x04not a pickle at all" * 8)


@pytest.mark.parametrize("damage, message", [
    (_truncate, "data_batch_3: not a readable pickle"),
    (_garble, "data_batch_3: not a readable pickle"),
    (lambda p: write_pickle(p, {"data": np.zeros((2, 3072), np.uint8)}),
     "data_batch_3: no 'labels' key (it has 'data')"),
    (lambda p: write_pickle(p, {"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]}),
     "data_batch_3: 'data' is not rows of 3072 bytes (3x32x32)"),
    (lambda p: write_pickle(p, {"data": np.zeros((2, 3072), np.uint8), "labels": [0]}),
     "data_batch_3: 2 images but 1 labels"),
    (lambda p: write_pickle(p, {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}),
     "data_batch_3: label 10 is outside 0..9"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "data_batch_3: holds a list, not the dict of a CIFAR batch"),
], ids=["truncated", "garbage", "no-labels", "bad-shape", "count-mismatch", "label-range", "not-a-dict"])
def test_cifar_bad_batch_is_one_line_naming_the_file(tmp_path, damage, message):
    damage(cifar10_dir(tmp_path) / "data_batch_3")
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", str(tmp_path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cifar_missing(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", str(tmp_path))


def test_imagefolder_with_subsets(tmp_path):
    from PIL import Image

    for split, n in (("train", 3), ("val", 1)):
        for c in ("ant", "bee", "cat"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((40, 60, 3), 50 * i, dtype=np.uint8)).save(d / f"{i}.png")
    b = load_dataset(f"imagefolder:{tmp_path}")
    assert b.train_x.shape == (9, 3, 224, 224) and b.val_x.shape[0] == 3 and b.num_classes == 3
    assert b.class_names == ("ant", "bee", "cat")
    from evit_search.training.imagefolder import load_imagefolder

    small = load_imagefolder(str(tmp_path), resolution=32, max_classes=2, per_class=2)
    assert small.train_x.shape == (4, 3, 32, 32) and small.num_classes == 2 and set(small.train_y.tolist()) == {0, 1}
    assert small.class_names == ("ant", "bee")


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_describe_states_stored_and_trained_size():
    b = make_synthetic(n_train=8, n_val=4, resolution=28)
    assert b.describe() == "synthetic: 8 train / 4 val, 4 classes, 1x28x28"
    assert b.describe(64) == "synthetic: 8 train / 4 val, 4 classes, stored 1x28x28, trained at 1x64x64"
    assert resize_bundle(b, 64).describe().endswith("stored 1x28x28, trained at 1x64x64")  # a prepared bundle knows


def test_digits_fixed_split():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.val_y, b.val_y) and len(a.train_y) + len(a.val_y) == 1797
    assert a.train_x.shape[1:] == (1, 8, 8) and a.class_names == tuple("0123456789")


def test_synthetic_is_deterministic():
    a, b = make_synthetic(seed=1), make_synthetic(seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)


def test_unknown_dataset():
    with pytest.raises(DataError, match="--data='mnist' is not one of"):
        load_dataset("mnist")


def test_subset_and_resize():
    b = make_synthetic(n_train=100, n_val=40, num_classes=4)
    s = subset(b, max_classes=2, per_class=5, val_per_class=3)
    assert s.num_classes == 2 and len(s.train_y) == 10 and len(s.val_y) == 6
    assert torch.bincount(s.train_y).tolist() == [5, 5]
    assert s.class_names is None  # synthetic gratings have no names
    r = resize_bundle(s, 64)
    assert r.train_x.shape[-2:] == (64, 64) and r.train_x.dtype == torch.uint8
