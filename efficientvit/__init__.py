"""EfficientViT (Liu et al., CVPR 2023, "Memory Efficient Vision Transformer with Cascaded Group
Attention"): one parametric implementation of the M0-M5 family and its Table 6 ablations.

    import efficientvit
    model = efficientvit.create_model("efficientvit_m4", num_classes=10, img_size=64)
    deploy = efficientvit.fuse(model)            # BN-folded copy for inference
    cfg = efficientvit.get_config("efficientvit_m0").with_overrides(depth=(1, 1, 2))
    model = efficientvit.build(cfg)

The config and the errors import without torch; everything that builds modules is loaded on
first use, so that tools reading stored configs (the TUI) stay light.
"""

from importlib import import_module

from .config import EfficientViTConfig, StageConfig
from .errors import CheckpointError, ConfigError, EfficientViTError, UnknownModelError

__version__ = "0.1.0"

_LAZY = {
    "convert_state_dict": "convert", "load_checkpoint": "convert", "load_model": "convert",
    "count_batchnorms": "fuse", "fuse": "fuse",
    "EfficientViT": "model", "build": "model", "count_params": "model",
    "TABLE6": "registry", "create_model": "registry", "describe": "registry", "get_config": "registry",
    "list_models": "registry", "register_model": "registry",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'efficientvit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = sorted(["CheckpointError", "ConfigError", "EfficientViTConfig", "EfficientViTError", "StageConfig",
                  "UnknownModelError", *_LAZY])
