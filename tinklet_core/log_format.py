"""How tinklet's log lines look: ``text`` for people, ``json`` for log collectors.

``text`` writes one line per record, and per line of the action's output: the worker logs
output in batches, and each output line gets the record's time, level and logger.
``json`` writes one object per line (and per output line) with ``time`` (UTC, ISO 8601),
``level``, ``logger`` and ``message``, plus ``workflow_id``, ``task_id``, ``action_id`` and
``agent_id`` when the line is about an action, ``output: true`` when the line is the action's
own output, and ``exception`` when one was logged. The message is the same text the ``text``
format shows, so the same rules about secrets hold. In both formats an action's output lines
have their control characters escaped (:func:`~tinklet_core.log_safe.escaped`: ESC, NUL, CR,
DEL, C1, U+2028, U+202E…) and the JSON ids are escaped and shortened
(:func:`~tinklet_core.log_safe.short_id`); what is reported to the server stays exact. Ids
reach a record through :class:`ActionLogger`, a logger bound to one action, which works from
any thread (output may be logged from a reader thread).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from json.encoder import encode_basestring
from typing import Any

from tinklet_core.log_safe import escaped, short_id
from tinklet_core.model import Action

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FORMATS = ("text", "json")
ACTION_FIELDS = ("workflow_id", "task_id", "action_id", "agent_id")
OUTPUT_FIELD = "output"


class ActionLogger(logging.Logger):
    """A logger that writes through ``base`` (same name, level and handlers) and stamps every
    record with one action's ids, and with ``output=True`` for the action's own output lines.

    It is not registered with :mod:`logging`'s manager, so it lives only as long as the action.
    """

    def __init__(self, base: logging.Logger, action: Action, output: bool = False) -> None:
        super().__init__(base.name)
        self.parent = base
        self._fields: dict[str, Any] = {
            "workflow_id": action.workflow_id,
            "task_id": action.task_id,
            "action_id": action.action_id,
            "agent_id": action.agent_id,
        }
        if output:
            self._fields[OUTPUT_FIELD] = True

    def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        """A record carrying this action's fields (an explicit ``extra`` still wins)."""
        record = super().makeRecord(*args, **kwargs)
        for name, value in self._fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return record


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object: time, level, logger, message, and the action fields it has."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACTION_FIELDS:
            value = getattr(record, name, None)
            if value:
                entry[name] = short_id(str(value))
        if getattr(record, OUTPUT_FIELD, False):
            entry[OUTPUT_FIELD] = True
            if "\n" in entry["message"]:  # a batch of output lines: one object each
                lines = entry.pop("message").split("\n")
                head = json.dumps(entry, ensure_ascii=False)[:-1] + ', "message": '
                # encode_basestring is what json.dumps uses for a str, without its per-call cost
                return "\n".join(f"{head}{encode_basestring(escaped(line))}}}" for line in lines)
            entry["message"] = escaped(entry["message"])
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`; a record of several action-output lines (the worker logs output in
    batches) gets the time, level and logger on each of its lines, as if each were a record."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, or its lines each with the same head; output lines escaped."""
        text = super().format(record)
        if not getattr(record, OUTPUT_FIELD, False) or not text.endswith(record.message):
            return text
        head = text[: len(text) - len(record.message)]
        return head + ("\n" + head).join(escaped(line) for line in record.message.split("\n"))


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter for ``text`` or ``json``; anything else is a ``ValueError``."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}")


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send log records at ``level`` and above to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
