"""What the report scripts beside this file share: reading ``NAME=FILE`` JSON documents given on
the command line, and printing a possibly missing number."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evit_search.stats import is_missing


def named_documents(ap: argparse.ArgumentParser, flag: str, specs: list[str]) -> dict[str, dict]:
    """``NAME=FILE`` arguments of ``flag`` as NAME -> the FILE's JSON; a malformed one is a usage error."""
    docs = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"{flag} {spec!r}: expected PROTOCOL=FILE")
        try:
            docs[name] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            ap.error(f"{flag} {spec!r}: cannot read {path} as JSON ({str(e).splitlines()[0]})")
    return docs


def fmt(v: float | None, digits: int = 3) -> str:
    return "-" if is_missing(v) else f"{v:.{digits}f}"
