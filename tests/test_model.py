"""The model family: every preset and switch builds, runs forward/backward, fuses, exports."""

import pytest
import torch
from helpers import randomize

import efficientvit
from efficientvit import EfficientViTConfig, StageConfig
from efficientvit.config import ACTS, ATTENTIONS, BLOCKS, NORMS, QKV_ALLOCATIONS

ALL = efficientvit.list_models()
PRESETS = [f"efficientvit_m{i}" for i in range(6)]
SWITCHES = (
    [("block", v) for v in BLOCKS]
    + [("attention", v) for v in ATTENTIONS]
    + [("cascade", v) for v in (True, False)]
    + [("qkv", v) for v in QKV_ALLOCATIONS]
    + [("token_dw", v) for v in (True, False)]
    + [("norm", v) for v in NORMS]
    + [("act", v) for v in ACTS]
    + [("n_ffn", 2), ("ffn_ratio", 4.0), ("v_ratio", 0.5), ("v_ratio", 1.25), ("key_dim", 8)]
)


def small(name, **kw):
    return efficientvit.create_model(name, img_size=64, num_classes=7, **kw)


def test_registry_lists_presets_and_table6():
    assert ALL[:6] == PRESETS
    assert len(efficientvit.TABLE6) == 11 and len(ALL) == 16
    with pytest.raises(efficientvit.ConfigError, match="already registered"):
        efficientvit.register_model("efficientvit_m0", efficientvit.get_config("efficientvit_m0"))
    with pytest.raises(efficientvit.UnknownModelError, match="unknown model 'efficientvit_m9'"):
        efficientvit.create_model("efficientvit_m9")


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_model(name):
    torch.manual_seed(0)
    m = small(name)
    x = torch.randn(2, 3, 64, 64)
    y = m(x)
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    y.square().sum().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("field,value", SWITCHES, ids=[f"{f}={v}" for f, v in SWITCHES])
def test_every_switch_builds_runs_and_fuses(field, value):
    torch.manual_seed(0)
    m = randomize(small("efficientvit_m0", **{field: value})).eval()
    x = torch.randn(2, 3, 64, 64)
    y = m(x)
    y.sum().backward()
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    with torch.no_grad():
        fused = efficientvit.fuse(m)
        assert torch.allclose(fused(x), m(x), atol=1e-4, rtol=0)
    if m.config.norm == "bn":
        assert efficientvit.count_batchnorms(fused) == 0


@pytest.mark.parametrize("size,chans", [(224, 3), (112, 3), (64, 1), (32, 1), (160, 3)])
def test_any_declared_input_size_and_grey_input(size, chans):
    m = efficientvit.create_model("efficientvit_m0", img_size=size, in_chans=chans, num_classes=10).eval()
    res = m.config.stage_resolutions()
    # bias tables are sized per stage resolution: min(window, resolution)^2 entries per head
    for i, stage in enumerate(m.stages):
        for block in stage.blocks:
            r = min(7, res[i])
            assert block.mixer.m.attn.attention_biases.shape[1] == r * r
    assert m(torch.randn(1, chans, size, size)).shape == (1, 10)


def test_wrong_input_size_is_a_clear_error():
    m = small("efficientvit_m0").eval()
    with pytest.raises(efficientvit.ConfigError, match="must be 64x64"):
        m(torch.randn(1, 3, 32, 32))


def test_fused_equals_unfused_and_has_no_bn():
    m = randomize(efficientvit.create_model("efficientvit_m4")).eval()
    x = torch.randn(2, 3, 224, 224)
    fused = efficientvit.fuse(m)
    with torch.no_grad():
        assert (fused(x) - m(x)).abs().max() < 1e-4
    assert efficientvit.count_batchnorms(fused) == 0
    assert efficientvit.count_batchnorms(m) > 0  # the input model is untouched


def test_attention_bias_never_stale_after_eval():
    """timm PR #2795: new weights loaded after .eval() must change the output."""
    m = efficientvit.create_model("efficientvit_m0", img_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = m(x)
        new = randomize(efficientvit.create_model("efficientvit_m0", img_size=64), seed=3).state_dict()
        m.load_state_dict(new)
        after = m(x)
        fresh = efficientvit.create_model("efficientvit_m0", img_size=64)
        fresh.load_state_dict(new)
        expected = fresh.eval()(x)
    assert not torch.allclose(before, after)
    assert torch.equal(after, expected)
    # in-place update (as an EMA does) of the biases alone changes the output too
    with torch.no_grad():
        attn = m.stages[0].blocks[0].mixer.m.attn
        attn.attention_biases.add_(1.0)
        assert not torch.equal(m(x), after)


def test_onnx_dynamic_batch_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from evit_search.measure.onnx_export import export_onnx

    m = randomize(efficientvit.create_model("efficientvit_m0", img_size=64, num_classes=10)).eval()
    path = export_onnx(efficientvit.fuse(m), tmp_path / "m0.onnx", (3, 64, 64))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch.randn(batch, 3, 64, 64)
        (out,) = sess.run(None, {"input": x.numpy()})
        with torch.no_grad():
            assert abs(out - m(x).numpy()).max() < 1e-4


def test_jit_trace():
    m = efficientvit.fuse(small("efficientvit_m4"))
    x = torch.randn(2, 3, 64, 64)
    traced = torch.jit.trace(m, x)
    with torch.no_grad():
        assert torch.allclose(traced(x), m(x), atol=1e-6)


def test_distillation_head():
    m = small("efficientvit_m0", distillation=True)
    x = torch.randn(2, 3, 64, 64)
    a, b = m.train()(x)
    assert a.shape == b.shape == (2, 7)
    out = m.eval()(x)
    with torch.no_grad():
        assert torch.allclose(out, (m.head(m.forward_features(x).mean((2, 3))) + m.head_dist(m.forward_features(x).mean((2, 3)))) / 2)


def test_v_ratio_changes_v_width_and_cascade_still_works():
    for ratio, expected in ((0.5, 16), (1.0, 32), (1.25, 40)):
        m = efficientvit.create_model("efficientvit_m4", img_size=64, v_ratio=ratio)
        attn = m.stages[0].blocks[0].mixer.m.attn
        assert attn.val_dim == expected  # C/h = 128/4 = 32 in stage 1
        assert m(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_config_round_trip_and_arch_id():
    cfg = efficientvit.get_config("efficientvit_m5")
    again = EfficientViTConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.arch_id() == cfg.arch_id()
    assert cfg.with_overrides(depth=(1, 3, 5)).arch_id() != cfg.arch_id()
    # unused kernel entries do not change the network, nor the id
    m1 = efficientvit.get_config("efficientvit_m1")
    assert m1.with_overrides(kernels=((7, 5, 9, 9), (7, 5, 3, 9), (7, 5, 3, 9))).arch_id() == m1.arch_id()


def test_table6_variants_are_distinct():
    ids = {efficientvit.get_config(name).arch_id() for _, name, _, _ in efficientvit.TABLE6}
    assert len(ids) == 11


def test_stage_config_is_frozen():
    s = StageConfig(64, 1, 4)
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        s.dim = 32


@pytest.mark.parametrize("a,b", [
    # a stage without blocks has no attention: its heads, key dim and kernels do not matter
    (dict(depth=(1, 0, 1), num_heads=(4, 4, 4)), dict(depth=(1, 0, 1), num_heads=(4, 2, 4), key_dim=(16, 8, 16))),
    # Q and K get C/h with the uniform allocation: key_dim is unused
    (dict(qkv="uniform", key_dim=16), dict(qkv="uniform", key_dim=8)),
    # a window at least the stage's resolution covers the whole map (64 px: stages of 4, 2, 1)
    (dict(window_size=7), dict(window_size=(7, 4, 2))),
    # MHSA has no cascade
    (dict(attention="mhsa", cascade=True), dict(attention="mhsa", cascade=False)),
])
def test_equivalent_configs_share_an_arch_id_and_outputs(a, b):
    base = efficientvit.get_config("efficientvit_m0", img_size=64)
    ca, cb = base.with_overrides(**a).validate(), base.with_overrides(**b).validate()
    assert ca != cb and ca.arch_id() == cb.arch_id()
    x = torch.randn(2, 3, 64, 64)
    outs = []
    for cfg in (ca, cb):
        torch.manual_seed(0)
        outs.append(efficientvit.build(cfg).eval()(x))
    assert torch.equal(outs[0], outs[1])


def test_configs_that_build_different_networks_have_different_ids():
    base = efficientvit.get_config("efficientvit_m0", img_size=64)
    ids = {base.arch_id(), base.with_overrides(key_dim=8).arch_id(), base.with_overrides(window_size=1).arch_id(),
           base.with_overrides(depth=(1, 0, 1), ffn_ratio=(2.0, 3.0, 2.0)).arch_id(),
           base.with_overrides(depth=(1, 0, 1)).arch_id(), base.with_overrides(cascade=False).arch_id()}
    assert len(ids) == 6
