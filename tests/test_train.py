"""Proxy training: loss goes down, determinism, NaN handling, resume, checkpoints."""


import pytest
import torch

import efficientvit
from evit_search.training.augment import random_resized_crop
from evit_search.training.data import make_synthetic
from evit_search.training.protocols import PROTOCOLS, get_protocol
from evit_search.training.trainer import save_model, train

TINY_CFG = efficientvit.get_config("efficientvit_m0").with_overrides(dim=(16, 32, 32), num_heads=(2, 2, 2), key_dim=4,
                                                                     depth=(1, 1, 1), kernels=(3, 3, 3, 3))
DATA = make_synthetic(n_train=256, n_val=64, num_classes=4, resolution=32)
# lr is per 512 images: 0.2 at batch 32 is 0.0125, enough for a tiny model in 40 steps
P = get_protocol("proxy-fast", epochs=5, batch_size=32, train_per_class=None, val_per_class=None, lr=0.2)


def run(**kw):
    return train(TINY_CFG, DATA, kw.pop("protocol", P), seed=kw.pop("seed", 0), threads=1, lock=False, **kw)


def test_training_lowers_the_loss_and_reports_metrics():
    res = run()
    assert res.status == "ok"
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] * 0.9
    assert res.top1 > 40.0  # 4 classes: chance is 25 %
    assert 0 <= res.top1 <= res.top5 <= 100
    assert len(res.history) == 5 and all("val_top1" in h and "lr" in h for h in res.history)
    assert res.train_images_per_s > 0 and res.wall_s > 0 and res.images_seen == 5 * (256 // 32) * 32


def test_deterministic_for_a_seed():
    a, b = run(), run()
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.top1 == b.top1
    c = run(seed=1)
    assert [h["train_loss"] for h in c.history] != [h["train_loss"] for h in a.history]


def test_full_recipe_parts_run():
    """Mixup/cutmix, label smoothing, RandAugment, random erasing, EMA and AGC together."""
    p = get_protocol("paper", epochs=1, img_size=32, batch_size=32, warmup_epochs=0.5)
    res = train(TINY_CFG, make_synthetic(n_train=64, n_val=32, resolution=32, in_chans=3), p, threads=1, lock=False)
    assert res.status == "ok" and "ema_val_top1" in res.history[0]


def test_nan_loss_is_a_failure_not_a_zero():
    p = get_protocol("proxy-fast", epochs=2, batch_size=32, train_per_class=None, val_per_class=None, lr=1e12, warmup_epochs=0)
    res = run(protocol=p)
    assert res.status == "failed"
    assert "training diverged" in res.reason and res.top1 is None


def test_resume_from_checkpoint_gives_the_same_result(tmp_path):
    full = run()
    p2 = P
    # an interrupted run: stop after epoch 2 by raising from the epoch callback
    class Stop(Exception):
        pass

    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        run(protocol=p2, checkpoint_dir=tmp_path, on_epoch=stop_after_two)
    assert (tmp_path / "last.pt").exists()
    resumed = run(protocol=p2, checkpoint_dir=tmp_path)
    assert len(resumed.history) == 5
    assert resumed.top1 == full.top1
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]


def test_checkpoint_of_another_run_is_refused(tmp_path):
    from evit_search.errors import UserError

    run(checkpoint_dir=tmp_path)
    with pytest.raises(UserError, match="belongs to another run"):
        run(checkpoint_dir=tmp_path, seed=5)


def test_saved_model_loads_back(tmp_path):
    res = run()
    path = save_model(tmp_path / "m.pt", res.model, res.config)
    m = efficientvit.load_model(path)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), res.model.eval()(x))


def test_protocols_are_named_and_scaled():
    assert PROTOCOLS["paper"].epochs == 300 and PROTOCOLS["paper"].img_size == 224
    assert PROTOCOLS["ablation"].epochs == 100
    assert PROTOCOLS["paper"].lr * 2048 / 512 == pytest.approx(4e-3)  # the official effective lr
    from evit_search.errors import UserError

    with pytest.raises(UserError, match="--protocol='fast' is not one of"):
        get_protocol("fast")


def test_random_resized_crop_shapes_and_determinism():
    x = torch.rand(8, 1, 16, 16)
    a = random_resized_crop(x, (0.5, 1.0), torch.Generator().manual_seed(0))
    b = random_resized_crop(x, (0.5, 1.0), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)


def test_no_weight_decay_on_attention_biases():
    from timm.optim import create_optimizer_v2

    m = efficientvit.build(TINY_CFG)
    opt = create_optimizer_v2(m, "adamw", lr=1e-3, weight_decay=0.025)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in m.named_parameters():
        if name.endswith("attention_biases") or p.ndim <= 1:
            assert id(p) not in decayed, name
    assert any(id(p) in decayed for p in m.parameters())


def test_device_is_resolved_or_refused_in_one_line():
    from evit_search.errors import UserError
    from evit_search.training.device import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match=r"--device='tpu' is not one of auto, cpu, cuda, cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match=r"^--device=cuda: no CUDA GPU on this machine; use --device cpu"):
            resolve_device("cuda")
    else:
        with pytest.raises(UserError, match="this machine has cuda:0 to"):
            resolve_device("cuda:99")


@pytest.mark.gpu
def test_training_on_the_gpu(tmp_path):
    """fp16 autocast with loss scaling; the saved model loads on the CPU."""
    res = run(device="cuda", checkpoint_dir=tmp_path / "ck")
    assert res.status == "ok" and res.device == "cuda" and res.top1 > 40.0
    path = save_model(tmp_path / "m.pt", res.model, res.config)
    m = efficientvit.load_model(path)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), res.model.float().eval()(x.cuda()).cpu(), atol=1e-4)
    resumed = run(device="cuda", checkpoint_dir=tmp_path / "ck")  # every epoch stored: nothing left to train
    assert resumed.history == res.history
