"""How long work reports progress without rendering it: domain functions take a :class:`Hooks`
and call what they need; the CLI fills it with rich progress bars, tests leave it empty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

StepCallback = Callable[[int, int, int, float], None]  # epoch, step, steps, loss
EpochCallback = Callable[[dict], None]  # one history entry per epoch


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def _no_training(_label: str) -> tuple[StepCallback | None, EpochCallback | None]:
    return None, None


@dataclass
class Hooks:
    """Every field is optional.

    - ``info(text)``: a line worth telling the user.
    - ``measure(event)``: the measuring worker's events (``prepare``, ``sample``, ``failed``...).
    - ``train(label)``: per-step and per-epoch callbacks for one training run named ``label``.
    - ``trial(outcome)``: a search trial ended (``number``, ``status``, ``reason``, ``values``).
    - ``refresh(summary, done, total)``: the study as it stands (search runs).
    - ``started(store, description, recovered)``: a search run is set up.
    """

    info: Callable[[str], None] = _nothing
    measure: Callable[[dict], None] | None = None
    train: Callable[[str], tuple[StepCallback | None, EpochCallback | None]] = _no_training
    trial: Callable[[dict], None] = _nothing
    refresh: Callable[..., None] = _nothing
    started: Callable[..., None] = _nothing
