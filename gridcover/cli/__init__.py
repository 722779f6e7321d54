"""The ``gridcover`` command: the parser, the exit statuses and the one-line errors; one module per subcommand.

Every error a user can cause is printed as one line and exits with status 2;
no traceback reaches a user (``GRIDCOVER_DEBUG=1`` shows it for developers). The environment is read here,
once (:class:`gridcover.environment.Environment`), and reaches each command as ``args.environment``.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from geo.errors import ConfigError, GridcoverError, InputError

from gridcover.cli.exits import EXIT_CONFLICT, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED  # noqa: F401
from gridcover.environment import Environment


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each module's ``register(subparsers)`` sets ``func`` returning an exit status."""
    from gridcover.cli import analyze, lookup, redraw, serve, sites, tasks  # when the parser is built: importing the package stays light

    parser = argparse.ArgumentParser(prog="gridcover", description="Find households and places that fall out of care (脱管).")
    parser.add_argument("--version", action="version", version=f"gridcover {package_version()}",
                        help="print the version of gridcover and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (analyze, sites, serve, lookup, redraw, tasks):
        command.register(sub)
    return parser


def package_version() -> str:
    """The installed package's version (pyproject.toml's ``version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridcover")
    except PackageNotFoundError:
        return "(not installed: run pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    environment = Environment.from_os()
    parser = build_parser()
    args = parser.parse_args(argv, namespace=argparse.Namespace(environment=environment))
    try:
        return args.func(args)
    except (InputError, ConfigError, GridcoverError) as exc:
        print(f"gridcover: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("gridcover: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if environment.debug:
            traceback.print_exc()
        print(f"gridcover: internal error: {type(exc).__name__}: {exc} (set GRIDCOVER_DEBUG=1 for details; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL
