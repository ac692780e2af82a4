"""Logging to stderr with the job, the run id and the account on every line.

`RPA_LOG_FORMAT=json` writes one JSON object a line for log collectors. The account travels
as `extra={"account": name}`; job and run id are set once per run by `setup_logging`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

QUIET_LOGGERS = ("boto3", "botocore", "urllib3", "hvac", "s3transfer", "werkzeug", "moto")


class RunContext(logging.Filter):
    """Stamps every record with the job, the run id, dry-run and (if missing) the account."""

    def __init__(self, job: str, run_id: str, dry_run: bool) -> None:
        super().__init__()
        self.job = job
        self.run_id = run_id
        self.dry_run = dry_run

    def filter(self, record: logging.LogRecord) -> bool:
        record.job = self.job
        record.run_id = self.run_id
        record.dry_run = self.dry_run
        if not hasattr(record, "account"):
            record.account = "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "job": getattr(record, "job", None),
            "run_id": getattr(record, "run_id", None),
            "dry_run": getattr(record, "dry_run", None),
            "account": getattr(record, "account", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever `sys.stderr` is at the time, since test runners replace it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


TEXT_FORMAT = "%(asctime)s %(levelname)s %(job)s run=%(run_id)s account=%(account)s %(message)s"


def setup_logging(*, job: str, run_id: str, dry_run: bool, level: str, fmt: str) -> None:
    """Replace the root handlers with one stderr handler for this run."""
    handler = StderrHandler()
    handler.addFilter(RunContext(job, run_id, dry_run))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
