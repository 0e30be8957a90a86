"""The parser and entry point: each command group registers its own subcommands."""

from __future__ import annotations

import argparse
import logging
import sys

from semantic_catalog.cli import analyze, embed, evaluate, finetune, matcher, remote, segment
from semantic_catalog.engine.errors import SemanticCatalogError

DESCRIPTION = (
    "The offline machine's command: embed, evaluate, adapt, finetune, analyze, train-matcher, segment, export-onnx, "
    "pull, push."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic-catalog", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (embed, evaluate, finetune, analyze, matcher, remote, segment):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_progress_notes()
    try:
        return args.func(args)
    except SemanticCatalogError as exc:
        print(f"semantic-catalog: error: {exc}", file=sys.stderr)
        return 2


class StderrNotes(logging.Handler):
    """Prints a log record to whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"semantic-catalog: {record.getMessage()}", file=sys.stderr)


def show_progress_notes() -> None:
    """The library's own INFO notes (such as a one-time ONNX export) on stderr; other libraries stay quiet."""
    logger = logging.getLogger("semantic_catalog")
    if not any(isinstance(handler, StderrNotes) for handler in logger.handlers):
        logger.addHandler(StderrNotes())
        logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
