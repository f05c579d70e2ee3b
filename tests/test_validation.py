"""validate() names the field, the value and the rule, before anything is built."""

import pytest

import efficientvit
from efficientvit import ConfigError

M0 = efficientvit.get_config("efficientvit_m0")

CASES = [
    (dict(dim=(64, 130, 192)), r"stages\[1\]\.dim=130 is not divisible by num_heads=4"),
    (dict(num_heads=(4, 4, 5), kernels=(5, 5, 5, 5)), r"stages\[2\]\.dim=192 is not divisible by num_heads=5"),
    (dict(num_heads=(4, 4, 6), dim=(64, 128, 192)), r"stages\[2\]\.kernels=\(5, 5, 5, 5\) has fewer kernels than num_heads=6"),
    (dict(kernels=(5, 4, 5, 5)), r"stages\[0\]\.kernels\[1\]=4 must be a positive odd int"),
    (dict(dim=(0, 128, 192)), r"stages\[0\]\.dim=0 must be >= 1"),
    (dict(depth=(1, -1, 3)), r"stages\[1\]\.depth=-1 must be >= 0"),
    (dict(key_dim=0), r"stages\[0\]\.key_dim=0 must be >= 1"),
    (dict(window_size=0), r"stages\[0\]\.window_size=0 must be >= 1"),
    (dict(n_ffn=0), r"stages\[0\]\.n_ffn=0 must be >= 1"),
    (dict(v_ratio=-1.0), r"stages\[0\]\.v_ratio=-1.0 must be a positive number"),
    (dict(ffn_ratio=0.001), r"stages\[0\]\.ffn_ratio=0.001 gives no hidden unit"),
    (dict(dim=(60, 128, 192), num_heads=(4, 4, 4)), r"stages\[0\]\.dim=60 must be divisible by 8"),
    (dict(block="resnet"), r"block='resnet' is not one of sandwich, swin"),
    (dict(attention="linear"), r"attention='linear' is not one of cga, mhsa"),
    (dict(qkv="equal"), r"qkv='equal' is not one of reallocated, uniform"),
    (dict(norm="gn"), r"norm='gn' is not one of bn, ln"),
    (dict(act="gelu"), r"act='gelu' is not one of relu, hardswish"),
    (dict(cascade="yes"), r"cascade='yes' must be true or false"),
    (dict(img_size=8), r"img_size=8 must be >= 16"),
    (dict(in_chans=0), r"in_chans=0 must be >= 1"),
    (dict(num_classes=-1), r"num_classes=-1 must be >= 0"),
    (dict(drop_rate=1.5), r"drop_rate=1.5 must be a number in \[0, 1\)"),
    (dict(qkv="uniform", v_ratio=0.5), r"v_ratio=0.5 must be 1.0 with qkv='uniform'"),
    (dict(depth=(1, 2)), r"depth=\(1, 2\) needs one value per stage \(3\)"),
    (dict(width=3), r"width=3 is not a config field"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[next(iter(c[0])) + str(i) for i, c in enumerate(CASES)])
def test_validation_error_names_field_value_rule(overrides, message):
    with pytest.raises(ConfigError, match=message):
        efficientvit.build(M0.with_overrides(**overrides))
    with pytest.raises(ConfigError, match=message):
        efficientvit.create_model("efficientvit_m0", **overrides)


def test_from_dict_rejects_unknown_keys():
    d = M0.to_dict()
    d["stages"][0]["heads"] = 4
    with pytest.raises(ConfigError, match=r"stages\[0\]\.heads=4 is not a stage field"):
        efficientvit.EfficientViTConfig.from_dict(d)
