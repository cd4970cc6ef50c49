"""Log set-up shared by the commands: plain text or one JSON object per line.

Log records carry operation names, ids, outcomes and timings, never request bodies or
secret values; the formatters print only the message and the ``extra`` fields a call site
passes on purpose.
"""

from __future__ import annotations

import json
import logging
import sys
import time

QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")
# Set by ``configure``: whether ``announce`` writes JSON too.
_json_format = False
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}


def _timestamp(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = _extras(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure(level: str = "info", json_format: bool = False) -> None:
    global _json_format
    _json_format = json_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # At debug level these print whole requests and responses, secret values included
    # (rotation functions run boto3 inside the server): never below warning.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def json_format() -> bool:
    """Whether the command was configured for JSON lines."""
    return _json_format


def announce(logger: str, message: str, **fields: object) -> None:
    """A line for whoever started the command (stdout), in the configured format.

    Supervisors read these (``secretsd up`` waits for the ``listening on`` line), and in JSON
    format a log collector reads every line of output as JSON, these too.
    """
    if _json_format:
        entry = {"time": _timestamp(time.time()), "level": "info", "logger": logger}
        line = json.dumps(dict(entry, message=message, **fields), default=str)
    else:
        line = message
    print(line, flush=True)
