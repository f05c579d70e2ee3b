"""EfficientViT (Liu et al., CVPR 2023, "Memory Efficient Vision Transformer with Cascaded Group
Attention"): one parametric implementation of the M0-M5 family and its Table 6 ablations.

    import efficientvit
    model = efficientvit.create_model("efficientvit_m4", num_classes=10, img_size=64)
    deploy = efficientvit.fuse(model)            # BN-folded copy for inference
    cfg = efficientvit.get_config("efficientvit_m0").with_overrides(depth=(1, 1, 2))
    model = efficientvit.build(cfg)
"""

from .config import EfficientViTConfig, StageConfig
from .convert import convert_state_dict, load_checkpoint, load_model
from .errors import CheckpointError, ConfigError, EfficientViTError, UnknownModelError
from .fuse import count_batchnorms, fuse
from .model import EfficientViT, build, count_params
from .registry import TABLE6, create_model, describe, get_config, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "TABLE6",
    "CheckpointError",
    "ConfigError",
    "EfficientViT",
    "EfficientViTConfig",
    "EfficientViTError",
    "StageConfig",
    "UnknownModelError",
    "build",
    "convert_state_dict",
    "count_batchnorms",
    "count_params",
    "create_model",
    "describe",
    "fuse",
    "get_config",
    "list_models",
    "load_checkpoint",
    "load_model",
    "register_model",
]
