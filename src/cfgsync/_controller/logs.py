"""Structured logs: one JSON object per line on stderr (or plain text for a terminal).

I/O: configures the root logger. Fields passed with ``extra=`` become JSON keys. Nothing in cfgsync
logs object data: messages name objects and fields, never values, so Secret data never reaches a log.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure(*, level: str = "INFO", json_format: bool = True) -> None:
    """Send every log record to stderr, as JSON lines or as text."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # urllib3 warns on every retried connection while an API server restarts; the informers say it once.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
