"""Logging set-up for entry points only (library code just uses module loggers)."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

from ledger.text import EscapedLogRecords


def configure(level: str = "INFO") -> None:
    """Rich output on a terminal; one plain line per record elsewhere (files, collectors)."""
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=True, markup=False
        )
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.addFilter(EscapedLogRecords())
    logging.basicConfig(level=level.upper(), format=fmt, handlers=[handler], force=True)
