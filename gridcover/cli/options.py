"""What several ``gridcover`` commands share: their common options, declared once, and how they are read.

Example
-------
>>> parse_date("2026-11-29")
datetime.date(2026, 11, 29)
"""

from __future__ import annotations

import argparse
import sys
from datetime import date


def parse_date(text: str) -> date:
    """A ``YYYY-MM-DD`` option value as a date (argparse's one-line usage error otherwise)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def progress_of(args: argparse.Namespace):
    """The progress callback of a command: a line on stderr per step, none with ``--quiet``."""
    return None if args.quiet else _progress
