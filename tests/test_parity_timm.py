"""Held against timm's efficientvit_msra (bit-identical to the official code)."""

import logging
import re

import pytest
import torch
from helpers import randomize

import efficientvit
from efficientvit.model import bias_index

timm = pytest.importorskip("timm")
PRESETS = [f"efficientvit_m{i}" for i in range(6)]
PAPER_FLOPS_M = {"efficientvit_m0": 79, "efficientvit_m1": 167, "efficientvit_m2": 201,
                 "efficientvit_m3": 263, "efficientvit_m4": 299, "efficientvit_m5": 522}


def timm_model(name, **kw):
    return randomize(timm.create_model(name, **kw)).eval()


@pytest.mark.parametrize("name", PRESETS)
def test_param_count_equals_timm(name):
    ours = efficientvit.count_params(efficientvit.create_model(name))
    theirs = sum(p.numel() for p in timm.create_model(name).parameters())
    assert ours == theirs


@pytest.mark.parametrize("name", PRESETS)
def test_timm_state_dict_outputs_match(name):
    t = timm_model(name)
    m = efficientvit.load_checkpoint(efficientvit.create_model(name), t.state_dict(), source="timm").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (m(x) - t(x)).abs().max() < 1e-5


@pytest.mark.parametrize("size", [64, 160])
def test_timm_parity_other_sizes_with_padding(size):
    """160 gives a 10x10 stage 1: padded to two 7x7 windows per side."""
    t = timm_model("efficientvit_m4", img_size=size)
    m = efficientvit.load_checkpoint(efficientvit.create_model("efficientvit_m4", img_size=size), t.state_dict()).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert (m(x) - t(x)).abs().max() < 1e-5


def official_layout(timm_sd, distillation=None):
    """timm's keys -> the official microsoft/Cream layout, written from the official repository's key names
    independently of efficientvit.convert, plus the persistent index buffers it saves."""
    out = {}
    for k, v in timm_sd.items():
        k2 = k
        m = re.match(r"patch_embed\.conv(\d)\.(.*)", k)
        if m:
            k2 = f"patch_embed.{(int(m.group(1)) - 1) * 2}.{m.group(2)}"
        m = re.match(r"stages\.(\d)\.downsample\.(res1|patchmerge|res2)\.(.*)", k)
        if m:
            k2 = f"blocks{int(m.group(1)) + 1}.{['res1', 'patchmerge', 'res2'].index(m.group(2))}.{m.group(3)}"
        m = re.match(r"stages\.(\d)\.blocks\.(\d+)\.(.*)", k)
        if m:
            s, j = int(m.group(1)), int(m.group(2))
            k2 = f"blocks{s + 1}.{j + (0 if s == 0 else 3)}.{m.group(3)}"
        k2 = re.sub(r"\.conv\.(weight|bias)$", r".c.\1", k2)
        k2 = re.sub(r"\.linear\.(weight|bias)$", r".l.\1", k2)
        out[k2] = v
        if k.endswith("attention_biases"):
            # official enumeration: a new index per new (|dr|, |dc|) in order of first appearance
            n = v.shape[1]
            r = int(round(n ** 0.5))
            pts = [(i, j) for i in range(r) for j in range(r)]
            seen, idxs = {}, []
            for p in pts:
                for q in pts:
                    off = (abs(p[0] - q[0]), abs(p[1] - q[1]))
                    idxs.append(seen.setdefault(off, len(seen)))
            out[k2.replace("attention_biases", "attention_bias_idxs")] = torch.tensor(idxs).view(n, n)
    if distillation is not None:
        out.update({f"head_dist.{k}": v for k, v in distillation.items()})
    return {"model": out}


@pytest.mark.parametrize("name", ["efficientvit_m0", "efficientvit_m5"])
def test_official_layout_outputs_match(name):
    t = timm_model(name)
    ckpt = official_layout(t.state_dict())
    assert any(k.startswith("blocks2.1.conv1.c.") for k in ckpt["model"])
    m = efficientvit.load_checkpoint(efficientvit.create_model(name), ckpt, source="official").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (m(x) - t(x)).abs().max() < 1e-5


def test_official_layout_with_distillation_head():
    t = timm_model("efficientvit_m0")
    head = {"bn.weight": torch.rand(192), "bn.bias": torch.rand(192), "bn.running_mean": torch.rand(192),
            "bn.running_var": torch.rand(192) + 0.5, "bn.num_batches_tracked": torch.tensor(0),
            "l.weight": torch.randn(1000, 192), "l.bias": torch.randn(1000)}
    ckpt = official_layout(t.state_dict(), distillation=head)
    converted = efficientvit.convert_state_dict(ckpt, source="official")
    assert "head_dist.linear.weight" in converted
    m = efficientvit.load_checkpoint(efficientvit.create_model("efficientvit_m0", distillation=True), ckpt, "official")
    assert torch.equal(m.head_dist.linear.weight, head["l.weight"])
    with pytest.raises(efficientvit.CheckpointError, match="unexpected"):
        efficientvit.load_checkpoint(efficientvit.create_model("efficientvit_m0"), ckpt, "official")


def test_bad_checkpoints_are_clear_errors():
    sd = efficientvit.create_model("efficientvit_m0").state_dict()
    bad = dict(sd)
    bad["stages.0.blocks.0.mixer.m.attn.attention_bias_idxs"] = torch.zeros(49, 49, dtype=torch.long)
    with pytest.raises(efficientvit.CheckpointError, match="bias layout"):
        efficientvit.convert_state_dict(bad)
    with pytest.raises(efficientvit.CheckpointError, match="source='keras'"):
        efficientvit.convert_state_dict(sd, source="keras")
    with pytest.raises(efficientvit.CheckpointError, match="shape mismatch: patch_embed.conv1.conv.weight"):
        efficientvit.load_checkpoint(efficientvit.create_model("efficientvit_m1"), sd)
    with pytest.raises(efficientvit.CheckpointError, match="missing: stages.2.blocks.3"):
        efficientvit.load_checkpoint(efficientvit.create_model("efficientvit_m0", depth=(1, 2, 4)), sd)


def test_bias_index_is_first_appearance_order():
    assert bias_index(2).tolist() == [[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]]


@pytest.mark.parametrize("name", PRESETS)
def test_fused_flops_equal_paper(name):
    from evit_search.measure.cost import count_cost

    cost = count_cost(efficientvit.get_config(name))
    assert round(cost.flops_m) == PAPER_FLOPS_M[name]
    logging.getLogger(__name__).info("%s %.2f MFLOPs", name, cost.flops_m)
