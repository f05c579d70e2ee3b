"""Sub-commands of ``evit-search``: argument definitions here, work in the modules they call
(imported inside each command so that ``--help`` stays fast)."""

from __future__ import annotations

import argparse


def add_all(sub: argparse._SubParsersAction) -> None:
    for add in (_models,):
        add(sub)


def _models(sub) -> None:
    p = sub.add_parser("models", help="list the named models (M0-M5 and the Table 6 variants)")
    p.set_defaults(func=_run_models)


def _run_models(args) -> int:
    import efficientvit
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "description", "C", "L", "H")
    for name in efficientvit.list_models():
        cfg = efficientvit.get_config(name)
        t.add_row(name, efficientvit.describe(name), str([s.dim for s in cfg.stages]),
                  str([s.depth for s in cfg.stages]), str([s.num_heads for s in cfg.stages]))
    Console().print(t)
    return 0
