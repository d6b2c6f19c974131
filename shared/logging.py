"""structlog configuration shared by both services: one processor chain, JSON to stdout in
production, readable on a terminal. Standard-library loggers (aiohttp, aio-pika) go through the
same chain, so every line on stdout is one JSON object a dashboard can read.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared import tracing
from shared.settings import LoggingSettings

# What every line of the process carries, whichever task writes it: its service, and a worker's
# id. Not contextvars: a task started in a context of its own (shared.tasks.start_shared_task,
# which keeps a request's ids off a listener's lines) would not see them.
_process_fields: dict[str, Any] = {}


def bind_process_fields(**fields: Any) -> None:
    """Add ``fields`` to every line this process writes from now on."""
    _process_fields.update(fields)


def _add_process_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in _process_fields.items():
        event_dict.setdefault(key, value)
    return event_dict


def _name_logger(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


def _add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A line written inside a traced request or job names its trace and span, so a log line
    leads to its trace. Only a check of one variable while tracing is off."""
    span = tracing.current_span()
    if span is not None:
        event_dict["trace_id"], event_dict["span_id"] = tracing.ids_of(span)
    return event_dict


def configure_logging(service: str, settings: LoggingSettings | None = None) -> None:
    """chatstream's own lines go through structlog alone, straight to stdout (orjson, no
    standard-library record per line: logging was about 6% of a worker's CPU per job that way).
    Standard-library loggers (aiohttp, aio-pika) are rendered by the same chain."""
    settings = settings or LoggingSettings()
    _process_fields.clear()
    _process_fields["service"] = service
    use_json = settings.format == "json" or (settings.format == "auto" and not sys.stdout.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_process_fields,
        _name_logger,
        _add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if use_json:
        structlog.configure(
            processors=[*shared, structlog.processors.JSONRenderer(serializer=orjson.dumps)],
            logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
        # Compact, like orjson's: one layout for every line the dashboards read.
        foreign_renderer: Processor = structlog.processors.JSONRenderer(separators=(",", ":"))
    else:
        console = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        structlog.configure(
            processors=[*shared, console],
            logger_factory=structlog.WriteLoggerFactory(sys.stdout),
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
        foreign_renderer = console
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, foreign_renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    # On the handler too: a library that sets its own logger to DEBUG (bm25s does) would
    # otherwise pass the root's level by.
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika and aiormq narrate every frame at INFO; their warnings still come through.
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    """A structlog logger; ``Any`` because structlog's bound loggers are dynamically typed."""
    # ``logger`` itself is a parameter name of structlog's; _name_logger renames it back.
    return structlog.get_logger(logger_name=name)
