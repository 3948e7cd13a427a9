"""Logging as `key=value` lines on stderr (or JSON lines), the format operators grep and ship."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        level = record.levelname.lower()
        line = f"time={moment} level={level} logger={record.name} event={record.getMessage()}"
        if record.exc_info:
            line += " exception=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: str = "warning", as_json: bool = False) -> None:
    """Route every newsdesk (and scheduler) log line to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def quote(value: object) -> str:
    """A value for a key=value line: bare when it is one word, else JSON-quoted."""
    text = str(value)
    if text and not any(c in text for c in ' "=\n\r\t'):
        return text
    return json.dumps(text, ensure_ascii=False)
