"""evit-search: a hardware-aware architecture explorer for EfficientViT (M0-M5 family)."""

__version__ = "0.1.0"
