"""One parametric PyTorch implementation of EfficientViT (Liu et al., CVPR 2023).

Every module takes the validated :class:`~efficientvit.config.EfficientViTConfig` or ints derived
from it. The feature map stays NCHW throughout (1x1 convs are the "linear" layers), as in the
official code. For the paper's layout (sandwich blocks, CGA, BN, ReLU, N=1) module names follow
timm's ``efficientvit_msra`` so that its state dicts load with the names unchanged.

Deploy mode (:func:`efficientvit.fuse`) folds every BatchNorm, folds the identity of the residual
depthwise convs into their kernels, folds the attention scale into the Q depthwise conv and
gathers the attention biases once into a buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import EfficientViTConfig, downsampled
from .errors import ConfigError


# --------------------------------------------------------------------------- basic units
def act_layer(name: str) -> nn.Module:
    return nn.Hardswish() if name == "hardswish" else nn.ReLU()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels at every position of an NCHW map (the BN -> LN ablation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, H, W, C) -> normalise C -> back
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNorm(nn.Sequential):
    """Conv2d without bias followed by a norm (BatchNorm2d as ``bn`` or LayerNorm2d as ``ln``).

    ``norm_init`` is the initial norm weight: 0 makes the residual branch that ends here the
    identity at initialisation, as in the paper.
    """

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
                 norm: str = "bn", norm_init: float = 1.0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        if norm == "bn":
            self.bn = nn.BatchNorm2d(cout)
            nn.init.constant_(self.bn.weight, norm_init)
            nn.init.zeros_(self.bn.bias)
        else:
            self.ln = LayerNorm2d(cout)
            nn.init.constant_(self.ln.weight, norm_init)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """The Conv2d with the BatchNorm folded in; LN cannot be folded and stays."""
        if not hasattr(self, "bn"):
            return self
        c = self.conv
        scale, shift = bn_affine(self.bn)
        fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                          c.dilation, c.groups, bias=True)
        fused.weight.copy_(c.weight * scale[:, None, None, None])
        fused.bias.copy_(shift)
        return fused


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode BatchNorm as ``x * scale + shift`` (per channel)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class NormLinear(nn.Sequential):
    """Classifier head: BatchNorm1d (or LayerNorm), optional dropout, Linear."""

    def __init__(self, cin: int, cout: int, norm: str = "bn", drop: float = 0.0):
        super().__init__()
        if norm == "bn":
            self.bn = nn.BatchNorm1d(cin)
        else:
            self.ln = nn.LayerNorm(cin)
        self.drop = nn.Dropout(drop)
        self.linear = nn.Linear(cin, cout)
        nn.init.trunc_normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        if not hasattr(self, "bn"):
            return self
        lin = self.linear
        scale, shift = bn_affine(self.bn)  # BN before the Linear: it folds into the input side
        fused = nn.Linear(lin.in_features, lin.out_features)
        fused.weight.copy_(lin.weight * scale[None, :])
        fused.bias.copy_(lin.weight @ shift + lin.bias)
        return fused


class Residual(nn.Module):
    """``x + m(x)``. The wrapped module is ``m`` (timm's and the official name)."""

    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """A residual depthwise ConvNorm becomes one conv: the identity is +1 on the centre tap."""
        m = self.m
        if not (isinstance(m, ConvNorm) and hasattr(m, "bn")):
            return self
        c = m.conv
        if not (c.groups == c.in_channels == c.out_channels and c.stride == (1, 1)):
            return self
        conv = m.fuse()
        kh, kw = conv.kernel_size
        conv.weight[:, 0, kh // 2, kw // 2] += 1.0
        return conv


class FFN(nn.Module):
    """Pointwise conv, activation, pointwise conv (its norm starts at 0)."""

    def __init__(self, dim: int, hidden: int, norm: str, act: str):
        super().__init__()
        self.pw1 = ConvNorm(dim, hidden, norm=norm)
        self.act = act_layer(act)
        self.pw2 = ConvNorm(hidden, dim, norm=norm, norm_init=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (never below it), as the SE reduction does."""
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a 1/4 reduction; names ``fc1``/``fc2`` as in timm."""

    def __init__(self, channels: int, act: str):
        super().__init__()
        rd = make_divisible(channels * 0.25)
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.act = act_layer(act)
        self.fc2 = nn.Conv2d(rd, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))


class PatchMerging(nn.Module):
    """Inverted residual without skip: 1x1 (x4), 3x3 depthwise stride 2, SE, 1x1 to the new width."""

    def __init__(self, dim: int, out_dim: int, norm: str, act: str):
        super().__init__()
        hidden = dim * 4
        self.conv1 = ConvNorm(dim, hidden, norm=norm)
        self.act = act_layer(act)
        self.conv2 = ConvNorm(hidden, hidden, 3, 2, groups=hidden, norm=norm)
        self.se = SqueezeExcite(hidden, act)
        self.conv3 = ConvNorm(hidden, out_dim, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


# --------------------------------------------------------------------------- attention
def bias_index(r: int) -> torch.Tensor:
    """(r*r, r*r) index into a per-head bias table: |drow| * r + |dcol| (row-major points)."""
    coords = torch.stack(torch.meshgrid(torch.arange(r), torch.arange(r), indexing="ij")).flatten(1)
    delta = (coords[:, :, None] - coords[:, None, :]).abs()  # (2, N, N)
    return delta[0] * r + delta[1]


class _AttentionBase(nn.Module):
    """Shared parts of CGA and MHSA: bias table, Q depthwise convs, projection, deploy state.

    In training and eval the bias is gathered from ``attention_biases`` on every forward (a few
    thousand elements), so it can never go stale when weights change in eval mode (timm PR #2795).
    Deploy mode gathers it once into the ``attn_bias`` buffer of the fused copy.
    """

    def __init__(self, dim: int, num_heads: int, qk_dim: int, v_dim: int, resolution: int,
                 kernels: tuple[int, ...], norm: str, act: str):
        super().__init__()
        self.num_heads, self.key_dim, self.val_dim = num_heads, qk_dim, v_dim
        self.resolution = resolution
        self.scale = qk_dim ** -0.5
        self.dws = nn.ModuleList(
            ConvNorm(qk_dim, qk_dim, kernels[i], groups=qk_dim, norm=norm) for i in range(num_heads)
        )
        self.proj = nn.Sequential(act_layer(act), ConvNorm(v_dim * num_heads, dim, norm=norm, norm_init=0.0))
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))
        self.register_buffer("attention_bias_idxs", bias_index(resolution), persistent=False)
        self.deploy = False

    def biases(self) -> torch.Tensor:
        """(heads, N, N) additive attention bias."""
        if self.deploy:
            return self.attn_bias
        return self.attention_biases[:, self.attention_bias_idxs]

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """Deploy form: fused convs, the scale folded into the Q depthwise convs, biases gathered."""
        dws = [dw.fuse() for dw in self.dws]
        if all(isinstance(dw, nn.Conv2d) for dw in dws):
            for dw in dws:  # attention is linear in q: scale(dw(q)) = dw'(q) with dw' = scale * dw
                dw.weight.mul_(self.scale)
                dw.bias.mul_(self.scale)
            self.scale = 1.0
        self.dws = nn.ModuleList(dws)
        self.register_buffer("attn_bias", self.attention_biases[:, self.attention_bias_idxs].clone())
        del self.attention_biases
        self.deploy = True
        return self

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """q, k: (..., d_qk, N); v: (..., d_v, N); bias: (..., N, N) -> (..., d_v, N)."""
        if self.scale != 1.0:
            q = q * self.scale
        attn = (q.transpose(-2, -1) @ k + bias).softmax(dim=-1)
        return v @ attn.transpose(-2, -1)


class CascadedGroupAttention(_AttentionBase):
    """Cascaded group attention: head i sees the i-th split of the channels (plus, with the
    cascade, the previous head's output) and has its own small Q/K/V projection.

    With ``v_ratio != 1`` a head's output width d differs from the split width C/h. The cascade
    then adds the output to the first min(d, C/h) channels of the next split: it is truncated
    when wider and zero-padded when narrower. This keeps the cascade parameter-free and exact
    at the paper's d = C/h.
    """

    def __init__(self, dim: int, num_heads: int, qk_dim: int, v_dim: int, resolution: int,
                 kernels: tuple[int, ...], norm: str, act: str, cascade: bool = True):
        super().__init__(dim, num_heads, qk_dim, v_dim, resolution, kernels, norm, act)
        self.cascade = cascade
        self.split = dim // num_heads
        self.qkvs = nn.ModuleList(
            ConvNorm(self.split, 2 * qk_dim + v_dim, norm=norm) for _ in range(num_heads)
        )

    def _carry(self, out: torch.Tensor) -> torch.Tensor:
        """Bring a head output (B, d, H, W) to the split width C/h for the cascade addition."""
        if self.val_dim == self.split:
            return out
        if self.val_dim > self.split:
            return out[:, : self.split]
        return F.pad(out, (0, 0, 0, 0, 0, self.split - self.val_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        bias = self.biases()
        splits = x.chunk(self.num_heads, dim=1)
        outs = []
        feat = splits[0]
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            if i > 0:
                feat = self._carry(outs[-1]) + splits[i] if self.cascade else splits[i]
            q, k, v = qkv(feat).split([self.key_dim, self.key_dim, self.val_dim], dim=1)
            q = dw(q)
            out = self.attend(q.flatten(2), k.flatten(2), v.flatten(2), bias[i])  # (B, d, N)
            outs.append(out.view(B, self.val_dim, H, W))
        return self.proj(torch.cat(outs, 1))


class MultiHeadSelfAttention(_AttentionBase):
    """Standard MHSA (Table 6 row 5): every head projects all C channels; heads run in parallel.

    Kept from CGA for a fair ablation: the Q/K/V widths, the attention bias, the per-head Q
    depthwise conv, the activation before the projection and the windowing.
    """

    def __init__(self, dim: int, num_heads: int, qk_dim: int, v_dim: int, resolution: int,
                 kernels: tuple[int, ...], norm: str, act: str):
        super().__init__(dim, num_heads, qk_dim, v_dim, resolution, kernels, norm, act)
        self.qkv = ConvNorm(dim, num_heads * (2 * qk_dim + v_dim), norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        h = self.num_heads
        qkv = self.qkv(x).view(B, h, 2 * self.key_dim + self.val_dim, H, W)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.val_dim], dim=2)
        q = torch.stack([dw(q[:, i]) for i, dw in enumerate(self.dws)], 1)
        out = self.attend(q.flatten(3), k.flatten(3), v.flatten(3), self.biases())  # (B, h, d, N)
        return self.proj(out.reshape(B, h * self.val_dim, H, W))


class LocalWindowAttention(nn.Module):
    """Runs attention on the whole map when it fits in one window, else on non-overlapping
    windows (zero-padded at the bottom/right as in the official code; padded tokens are not
    masked, which is what the official code does too)."""

    def __init__(self, attn: _AttentionBase, window: int):
        super().__init__()
        self.attn = attn
        self.window = window  # effective window: min(window_size, stage resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        ws = self.window
        if H == ws and W == ws:
            return self.attn(x)
        pad_b, pad_r = (ws - H % ws) % ws, (ws - W % ws) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        pH, pW = H + pad_b, W + pad_r
        nH, nW = pH // ws, pW // ws
        # (B, C, nH*ws, nW*ws) -> (B*nH*nW, C, ws, ws): one copy, stays NCHW
        x = x.view(B, C, nH, ws, nW, ws).permute(0, 2, 4, 1, 3, 5).reshape(B * nH * nW, C, ws, ws)
        x = self.attn(x)
        # (B*nH*nW, C, ws, ws) -> (B, C, nH*ws, nW*ws)
        x = x.view(B, nH, nW, C, ws, ws).permute(0, 3, 1, 4, 2, 5).reshape(B, C, pH, pW)
        if pad_b or pad_r:
            x = x[:, :, :H, :W].contiguous()
        return x


# --------------------------------------------------------------------------- blocks and stages
def _dw(dim: int, norm: str, init: float) -> Residual:
    return Residual(ConvNorm(dim, dim, 3, groups=dim, norm=norm, norm_init=init))


def _ffn(dim: int, ratio: float, norm: str, act: str) -> Residual:
    return Residual(FFN(dim, int(dim * ratio), norm, act))


def _pair_names(side: int, j: int) -> tuple[str, str]:
    """Names of the j-th (DW, FFN) pair before (side 0) or after (side 1) the attention.

    The first pair keeps timm's names (dw0/ffn0, dw1/ffn1) so the paper's N=1 layout loads timm
    and official weights; extra pairs of N>1 get a suffix.
    """
    suffix = "" if j == 0 else f"_{j}"
    return f"dw{side}{suffix}", f"ffn{side}{suffix}"


class EfficientViTBlock(nn.Module):
    """``sandwich``: N x [DW, FFN], attention, N x [DW, FFN], each a residual.
    ``swin``: attention, then ``n_ffn`` FFNs, each a residual (no DW token interaction)."""

    def __init__(self, cfg: EfficientViTConfig, i: int, resolution: int):
        super().__init__()
        s = cfg.stages[i]
        window = min(s.window_size, resolution)
        kw = dict(dim=s.dim, num_heads=s.num_heads, qk_dim=cfg.qk_dim(i), v_dim=cfg.v_dim(i),
                  resolution=window, kernels=s.kernels, norm=cfg.norm, act=cfg.act)
        attn = (CascadedGroupAttention(cascade=cfg.cascade, **kw) if cfg.attention == "cga"
                else MultiHeadSelfAttention(**kw))
        mixer = Residual(LocalWindowAttention(attn, window))
        order: list[str] = []

        def add(name: str, module: nn.Module) -> None:
            setattr(self, name, module)  # registration order = state-dict order = timm's
            order.append(name)

        if cfg.block == "sandwich":
            for side in (0, 1):
                if side == 1:
                    add("mixer", mixer)
                for j in range(s.n_ffn):
                    dw_name, ffn_name = _pair_names(side, j)
                    if cfg.token_dw:
                        add(dw_name, _dw(s.dim, cfg.norm, 0.0))
                    add(ffn_name, _ffn(s.dim, s.ffn_ratio, cfg.norm, cfg.act))
        else:
            add("mixer", mixer)
            for j in range(s.n_ffn):
                add(_pair_names(0, j)[1], _ffn(s.dim, s.ffn_ratio, cfg.norm, cfg.act))
        self.order = tuple(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
        return x


class Subsample(nn.Sequential):
    """Between stages: [DW, FFN] on the old width, PatchMerging, [DW, FFN] on the new width.
    The DW branches here start at norm weight 1, not 0 (as in the official code)."""

    def __init__(self, cfg: EfficientViTConfig, i: int):
        super().__init__()
        prev, cur = cfg.stages[i - 1], cfg.stages[i]

        def res(dim: int, ratio: float) -> nn.Sequential:
            parts = [_dw(dim, cfg.norm, 1.0)] if cfg.token_dw else []
            return nn.Sequential(*parts, _ffn(dim, ratio, cfg.norm, cfg.act))

        self.res1 = res(prev.dim, prev.ffn_ratio)
        self.patchmerge = PatchMerging(prev.dim, cur.dim, cfg.norm, cfg.act)
        self.res2 = res(cur.dim, cur.ffn_ratio)


class Stage(nn.Module):
    def __init__(self, cfg: EfficientViTConfig, i: int, resolution: int):
        super().__init__()
        self.downsample = Subsample(cfg, i) if i > 0 else nn.Identity()
        self.blocks = nn.Sequential(*(EfficientViTBlock(cfg, i, resolution) for _ in range(cfg.stages[i].depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class PatchEmbedding(nn.Sequential):
    """Four 3x3 stride-2 ConvNorms (C/8, C/4, C/2, C) with an activation between them."""

    def __init__(self, in_chans: int, dim: int, norm: str, act: str):
        super().__init__()
        widths = (in_chans, dim // 8, dim // 4, dim // 2, dim)
        for j in range(4):
            self.add_module(f"conv{j + 1}", ConvNorm(widths[j], widths[j + 1], 3, 2, norm=norm))
            if j < 3:
                self.add_module(f"act{j + 1}", act_layer(act))


# --------------------------------------------------------------------------- the network
class EfficientViT(nn.Module):
    """EfficientViT classifier built from a validated config (use :func:`efficientvit.build`)."""

    def __init__(self, cfg: EfficientViTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        res = cfg.stage_resolutions()
        self.patch_embed = PatchEmbedding(cfg.in_chans, cfg.stages[0].dim, cfg.norm, cfg.act)
        self.stages = nn.Sequential(*(Stage(cfg, i, res[i]) for i in range(len(cfg.stages))))
        self.num_features = cfg.stages[-1].dim
        if cfg.num_classes > 0:
            self.head = NormLinear(self.num_features, cfg.num_classes, cfg.norm, cfg.drop_rate)
            if cfg.distillation:
                self.head_dist = NormLinear(self.num_features, cfg.num_classes, cfg.norm, cfg.drop_rate)
        else:
            self.head = nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.patch_embed(x))

    def forward(self, x: torch.Tensor):
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            self._check_input(x)
        x = self.forward_features(x).mean((2, 3))
        out = self.head(x)
        if hasattr(self, "head_dist"):
            dist = self.head_dist(x)
            # DeiT style: both heads while training, their average for inference
            return (out, dist) if self.training else (out + dist) / 2
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_chans:
            raise ConfigError("input", tuple(x.shape), f"must be (B, {cfg.in_chans}, H, W) for in_chans={cfg.in_chans}")
        # the bias tables are sized for the declared stage resolutions
        if tuple(x.shape[-2:]) != (cfg.img_size, cfg.img_size):
            raise ConfigError(
                "input", tuple(x.shape),
                f"must be {cfg.img_size}x{cfg.img_size} (img_size); build with img_size={x.shape[-1]} instead",
            )

    def no_weight_decay(self) -> set[str]:
        return {n for n, _ in self.named_parameters() if n.endswith("attention_biases")}


def build(cfg: EfficientViTConfig) -> EfficientViT:
    """Validate ``cfg`` and build the network (random initialisation)."""
    return EfficientViT(cfg.validate())


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["EfficientViT", "build", "count_params", "bias_index", "downsampled"]
