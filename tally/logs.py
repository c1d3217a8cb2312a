"""Structured logs: one JSON object per line, carrying the request id of the work it is about.

Web requests, Celery tasks and SQL API sessions each set ``request_id`` (a context variable,
so threads and asyncio tasks keep their own) and every log record picks it up through
``RequestIdFilter``. ``TALLY_LOG_FORMAT=json`` (the default outside demo mode) selects
``JsonFormatter`` for the ``tally`` loggers, the web server's and Celery's.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# A client-sent X-Request-ID is kept only when it looks like an id (no log injection).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def new_request_id(offered: str | None = None) -> str:
    """The client's id when it is a safe token, else a fresh random one."""
    if offered and _SAFE_ID.match(offered):
        return offered
    return uuid.uuid4().hex


def request_id_bind(value: str) -> contextvars.Token[str]:
    """Sets the current request id; returns the token that ``request_id_reset`` takes."""
    return request_id_var.set(value)


def request_id_reset(token: contextvars.Token[str]) -> None:
    request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (empty outside a request, task or session)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, request_id, any ``extra`` fields,
    and the traceback under ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in body and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)
