"""One place that configures structlog for every component (JSON or console).

Every module gets its logger with ``get_logger(__name__)``; no print debugging anywhere.
``CONTROLPLANE_LOG_FORMAT=json|console`` and ``CONTROLPLANE_LOG_LEVEL`` pick the output.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Configure structlog (idempotent). Console output on a TTY, JSON otherwise."""
    global _configured
    fmt = fmt or os.environ.get("CONTROLPLANE_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")
    level_name = (level or os.environ.get("CONTROLPLANE_LOG_LEVEL") or "info").upper()
    lvl = getattr(logging, level_name, logging.INFO)
    renderer = structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Route stdlib logging (sanic, kopf, aiohttp) through the same level.
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr)
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(name)
