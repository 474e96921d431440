"""Run a module's command-line verbs: parse, call the verb, and turn a bad cohort directory
or model file into one clear line on stderr with exit status 2 (no traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from twin.errors import BundleError


def run_verbs(prog: str, register_cli: Callable, argv: Sequence[str] | None,
              errors: tuple[type[BaseException], ...] = ()) -> int:
    """Parse ``argv`` with the verbs ``register_cli(subparsers)`` adds and run the chosen one;
    ``errors`` (beyond BundleError, OSError, ValueError, KeyError) are reported likewise."""
    parser = argparse.ArgumentParser(prog=prog)
    register_cli(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (*errors, BundleError, OSError, ValueError, KeyError) as exc:
        print(f"{parser.prog} {args.verb}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
