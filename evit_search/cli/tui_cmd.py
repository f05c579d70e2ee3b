"""``tui``: the terminal UI (imported only when asked: Textual is not needed for other commands)."""

from __future__ import annotations

from .options import add_storage


def add(sub) -> None:
    p = sub.add_parser("tui", help="browse studies, candidates and Pareto fronts in the terminal (live)")
    p.add_argument("study", nargs="?", help="study name (default: pick from the storage's studies)")
    add_storage(p)
    p.set_defaults(func=run_tui)


def run_tui(args) -> int:
    from ..tui.app import run_tui as start  # Textual: loaded for this command only

    return start(args.study, args.storage)
