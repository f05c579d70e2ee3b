"""Optuna samplers by name, with defaults sized for short CPU runs."""

from __future__ import annotations

import optuna

SAMPLERS = ("nsga2", "tpe", "random", "grid")


def make_sampler(name: str, seed: int, grid: dict[str, list] | None = None, population_size: int = 16,
                 n_startup_trials: int = 8):
    """``nsga2`` (population ``population_size``), ``tpe`` (multivariate, ``n_startup_trials``
    random draws first), ``random`` or ``grid`` (needs ``grid``)."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=n_startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    raise ValueError(f"unknown sampler {name!r}")
