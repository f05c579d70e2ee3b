"""Proxy training: datasets, the paper's recipe from timm's parts, protocols."""
