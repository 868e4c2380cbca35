"""The `meshstack` command: one sub-command per module, each imported on demand.

Exit status: 0 success; 1 a judged failure (FAIL, INCONCLUSIVE, INVALID-RUN); 2 an
operation that could not complete (a local stack that would not start, a removal
that left something behind); 3 a HARNESS-ERROR; 4 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_OPERATION, EXIT_HARNESS, EXIT_USAGE = 0, 1, 2, 3, 4

# sub-command -> module under meshstack.cli that defines add_parser() and run()
_COMMANDS = {
    "analyze": "analyze",
    "local": "local",
    "down": "down",
    "sweep": "sweep",
    "report": "report",
}


class UsageError(Exception):
    """Bad arguments: reported on stderr with exit status 4."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meshstack", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in _COMMANDS.values():
        mod = importlib.import_module(f"meshstack.cli.{module}")
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"meshstack {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("meshstack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
