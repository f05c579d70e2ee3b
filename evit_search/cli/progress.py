"""Progress with rich: bars for training epochs and measurement sessions, lines for events. The
domain reports through :class:`~evit_search.hooks.Hooks`; this module fills them."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..hooks import Hooks


def progress(console: Console | None = None) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} done"),
                    TimeElapsedColumn(), transient=False, console=console)


class TrainProgress:
    """One bar per epoch, the loss on the bar, accuracy printed per epoch."""

    def __init__(self, prog: Progress, label: str):
        self.prog, self.label, self.task = prog, label, None

    def on_step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.task is None or step == 1:
            if self.task is not None:
                self.prog.remove_task(self.task)
            self.task = self.prog.add_task(f"{self.label} epoch {epoch + 1}", total=steps)
        self.prog.update(self.task, completed=step, description=f"{self.label} epoch {epoch + 1} loss {loss:.3f}")

    def on_epoch(self, entry: dict) -> None:
        self.prog.console.print(f"{self.label} epoch {entry['epoch']}: train loss {entry['train_loss']:.3f}, "
                                f"val top-1 {entry['val_top1']:.2f}%, {entry['train_images_per_s']:.0f} img/s")


class MeasureProgress:
    """A measurement session's events: rounds are open-ended, so the bar counts samples taken. The
    bar appears with the first event."""

    def __init__(self, prog: Progress, description: str = "measuring"):
        self.prog, self.description, self.task = prog, description, None

    def __call__(self, event: dict) -> None:
        if self.task is None:
            self.task = self.prog.add_task(self.description, total=None)
        kind = event.get("event")
        if kind == "prepare":
            self.prog.update(self.task, description=f"{self.description}: preparing {event['model']} ({event['backend']})")
        elif kind == "sample":
            self.prog.update(self.task, advance=1,
                             description=f"{self.description}: round {event['round']} {event['model']} ({event['backend']}) "
                                         f"{event['images_per_s']:.1f} img/s")
        elif kind == "failed":
            self.prog.console.print(f"[red]failed[/] {event['model']} on {event['backend']}: {event['reason']}")
        elif kind == "skipped":
            self.prog.console.print(f"[yellow]skipped[/] {event['backend']}: {event['reason']}")
        elif kind == "locked" and event.get("waited_s", 0) > 1:
            self.prog.console.print(f"waited {event['waited_s']:.0f} s for other work of this tool on this host")


def rich_hooks(prog: Progress, measure_label: str = "measuring", **more) -> Hooks:
    """Hooks that draw on ``prog``: training bars per label, one measurement bar, info lines."""
    def train(label: str):
        tp = TrainProgress(prog, label)
        return tp.on_step, tp.on_epoch

    return Hooks(info=prog.console.print, measure=MeasureProgress(prog, measure_label), train=train, **more)
