"""Every loader on small fixtures written by the tests, and what a user's own data gets: each
problem is one error line or one warning line that names what is wrong."""

import gzip
import logging
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evit_search.errors import DataError
from evit_search.training.data import FASHION_CLASSES, load_dataset, make_synthetic, read_idx, resize_bundle, subset
from evit_search.training.imagefolder import load_imagefolder

ROOT = Path(__file__).resolve().parent.parent


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


def image_folder(root, layout: dict[str, dict[str, int]], ext=".png"):
    """``layout``: split -> class -> number of images (0: an empty class folder)."""
    for split, classes in layout.items():
        for c, n in classes.items():
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((40, 60, 3), 25 * i % 256, dtype=np.uint8)).save(d / f"{i}{ext}")
    return root


def load_logged(spec, caplog, **kw):
    """The bundle and the warnings the load logged, one line each."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        b = load_imagefolder(spec, **kw) if kw else load_dataset(f"imagefolder:{spec}")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all("\n" not in line for line in lines)
    return b, lines


def test_imagefolder_with_subsets(tmp_path, caplog):
    abc = {"ant": 3, "bee": 3, "cat": 3}
    image_folder(tmp_path, {"train": abc, "val": dict.fromkeys(abc, 1)})
    b, warned = load_logged(tmp_path, caplog)
    assert b.train_x.shape == (9, 3, 224, 224) and b.val_x.shape[0] == 3 and b.num_classes == 3 and not warned
    assert b.class_names == ("ant", "bee", "cat")
    small = load_imagefolder(str(tmp_path), resolution=32, max_classes=2, per_class=2)
    assert small.train_x.shape == (4, 3, 32, 32) and small.num_classes == 2 and set(small.train_y.tolist()) == {0, 1}
    assert small.class_names == ("ant", "bee")


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):  # the only class is empty: none is left
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_empty_class_is_left_out_with_a_warning(tmp_path, caplog):
    image_folder(tmp_path, {"train": {"ant": 2, "bee": 0, "cat": 2}, "val": {"ant": 1, "cat": 1}})
    b, warned = load_logged(tmp_path, caplog)
    assert b.num_classes == 2 and b.class_names == ("ant", "cat") and sorted(b.train_y.tolist()) == [0, 0, 1, 1]
    assert warned == [(f"imagefolder: class folder(s) 'bee' in {tmp_path / 'train'} hold no images: left out, "
                       "2 classes remain")]


def test_imagefolder_val_class_missing_from_train_is_an_error(tmp_path):
    image_folder(tmp_path, {"train": {"ant": 2, "bee": 0}, "val": {"ant": 1, "bee": 1, "cow": 1}})
    with pytest.raises(DataError, match=r"val class\(es\) 'bee', 'cow' in .*val have no training images in .*train, "
                                        "so their labels would be wrong"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_train_class_missing_from_val_warns(tmp_path, caplog):
    image_folder(tmp_path, {"train": {"ant": 2, "bee": 2, "cat": 2}, "val": {"ant": 1, "bee": 0}})
    b, warned = load_logged(tmp_path, caplog)
    assert b.num_classes == 3 and b.val_y.tolist() == [0]
    assert warned == [(f"imagefolder: train class(es) 'bee', 'cat' have no images in {tmp_path / 'val'}: "
                       "their accuracy cannot be measured")]
    # a subset that leaves the unmeasured classes out is not warned about
    assert load_logged(tmp_path, caplog, max_classes=1)[1] == []


def test_imagefolder_val_folder_without_any_image_is_an_error(tmp_path):
    image_folder(tmp_path, {"train": {"ant": 2}, "val": {"ant": 0}})
    with pytest.raises(DataError, match="no images in .*val for the 1 classes trained, so accuracy cannot be measured"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_without_val_holds_out_10_percent_with_a_warning(tmp_path, caplog):
    image_folder(tmp_path, {"train": {"ant": 10, "bee": 10}})
    b, warned = load_logged(tmp_path, caplog)
    assert len(b.val_y) == 2 and len(b.train_y) == 18
    assert warned[0] == (f"imagefolder: no val/ folder in {tmp_path}: 2 of the 20 training images (10 %, fixed seed) "
                         "are held out for validation")
    assert torch.equal(load_logged(tmp_path, caplog)[0].val_x, b.val_x)  # the same split every time


def test_imagefolder_classes_directly_under_path(tmp_path, caplog):
    image_folder(tmp_path, {".": {"ant": 10, "bee": 10}})
    b, warned = load_logged(tmp_path, caplog)
    assert b.class_names == ("ant", "bee") and "no val/ folder" in warned[0]
    (tmp_path / "val").mkdir()  # without train/, val/ would be read as a third class
    with pytest.raises(DataError, match="has val/ but no train/"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_reads_any_case_of_extension_and_skips_hidden_files(tmp_path, caplog):
    d = tmp_path / "train" / "ant"
    d.mkdir(parents=True)
    img = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
    for name, fmt in (("a.PNG", "PNG"), ("b.JPG", "JPEG"), ("c.Jpeg", "JPEG"), ("d.png", "PNG")):
        img.save(d / name, format=fmt)
    (d / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork, not an image")
    (d / "notes.txt").write_text("not an image")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    image_folder(tmp_path, {"val": {"ant": 1}}, ext=".PNG")
    b, warned = load_logged(tmp_path, caplog)
    assert len(b.train_y) == 4 and len(b.val_y) == 1 and b.class_names == ("ant",) and not warned


def test_unreadable_image_is_one_line(tmp_path):
    image_folder(tmp_path, {"train": {"ant": 1}, "val": {"ant": 1}})
    (tmp_path / "train" / "ant" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"imagefolder: cannot read .*broken\.jpg"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_describe_states_stored_and_trained_size():
    b = make_synthetic(n_train=8, n_val=4, resolution=28)
    assert b.describe() == "synthetic: 8 train / 4 test, 4 classes, 1x28x28"
    assert b.describe(64) == "synthetic: 8 train / 4 test, 4 classes, stored 1x28x28, trained at 1x64x64"
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
    s = subset(b, max_classes=2, per_class=5)
    assert s.num_classes == 2 and len(s.train_y) == 10
    assert len(s.val_y) == int((b.val_y < 2).sum())  # the held-out split keeps every image of the kept classes
    assert torch.bincount(s.train_y).tolist() == [5, 5]
    assert s.class_names is None  # synthetic gratings have no names
    r = resize_bundle(s, 64)
    assert r.train_x.shape[-2:] == (64, 64) and r.train_x.dtype == torch.uint8


def cli(*args, cwd):
    env = {**os.environ, "COLUMNS": "400", "PYTHONPATH": str(ROOT)}  # COLUMNS: one line stays one line in rich's output
    return subprocess.run([sys.executable, "-m", "evit_search", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, check=False)


def test_cli_train_on_a_users_folder_warns_in_one_line_each_and_saves_class_names(tmp_path):
    image_folder(tmp_path / "pics", {"train": {"ant": 10, "bee": 10, "empty": 0}}, ext=".JPG")
    out = cli("train", "efficientvit_m0", "--data", f"imagefolder:{tmp_path / 'pics'}", "--protocol", "proxy-fast",
              "--train-threads", "1", "--out", str(tmp_path / "m0.pt"), cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = out.stderr.splitlines()
    assert any(line.startswith("imagefolder: class folder(s) 'empty' in ")
               and line.endswith("left out, 2 classes remain") for line in lines)
    assert any(line.startswith("imagefolder: no val/ folder in ") and line.endswith("held out for validation")
               for line in lines)
    header = "imagefolder:pics: 18 train / 2 test, 2 classes, stored 3x32x32, trained at 3x32x32 with protocol"  # decoded at the size it trains at
    assert header in out.stdout
    ckpt = torch.load(tmp_path / "m0.pt", weights_only=False)
    assert ckpt["class_names"] == ["ant", "bee"] and ckpt["config"]["num_classes"] == 2


def test_cli_data_errors_are_one_line(tmp_path, capsys):
    from evit_search.cli import main

    image_folder(tmp_path / "pics", {"train": {"ant": 1}, "val": {"ant": 1, "cow": 1}})
    cifar10_dir(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80\x04\x95")
    truncated = "test_batch: not a readable pickle (UnpicklingError: pickle data was truncated)"
    for data, message in ((f"imagefolder:{tmp_path / 'pics'}", "val class(es) 'cow' in "), ("cifar10", truncated)):
        code = main(["train", "efficientvit_m0", "--data", data, "--data-dir", str(tmp_path), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("evit-search train: error: ") and message in err
        assert len(err.strip().splitlines()) == 1, err
