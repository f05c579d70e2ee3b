"""Shared test helpers."""

import torch


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN statistics/affine and attention biases, so that parity tests see real values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
            if isinstance(getattr(m, "attention_biases", None), torch.Tensor):
                m.attention_biases.copy_(torch.randn(m.attention_biases.shape, generator=g))
    return model


def optuna_study(name: str, url: str):
    """The raw Optuna study, for tests that check what is stored (the package itself goes through
    ``evit_search.storage``)."""
    import optuna

    from evit_search import storage as st

    return optuna.load_study(study_name=name, storage=st.open_storage(url, create=False))
