"""The ``evit-search`` command line: one module per command group, each adding its parsers. The
one place that turns project errors into one line and a non-zero exit (``--debug`` shows the
traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from efficientvit.errors import EfficientViTError

from .. import __version__
from . import model_cmd, reproduce_cmd, search_cmd, tui_cmd


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the flag (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="evit-search",
                      description="Hardware-aware architecture explorer for EfficientViT (Liu et al., CVPR 2023).")
    p.add_argument("--version", action="version", version=f"evit-search {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in (model_cmd, reproduce_cmd, search_cmd, tui_cmd):
        group.add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        # piped or logged: rich would assume 80 columns and elide the tables' cells
        os.environ["COLUMNS"] = "160"
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EfficientViTError as e:
        if args.debug:
            raise
        print(f"evit-search {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evit-search {args.command}: interrupted; what was stored is kept", file=sys.stderr)
        return 130
