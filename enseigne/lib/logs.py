"""Log lines an operator can grep and a collector can parse: one line per event, in UTC.

Every record is one line, ``2026-12-03T08:15:02.123Z LEVEL logger pid thread message``; a
traceback stays on that line with its line breaks written ``\\n``. Refusals the product means
to give (403, 404, 400) are logged as one warning, without the traceback Django attaches to
them: they are answers, not faults.
"""

from __future__ import annotations

import datetime as dt
import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(threadName)s %(message)s"


class OneLineUtc(logging.Formatter):
    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style="%", **kwargs):
        super().__init__(fmt or FORMAT, datefmt, style, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r\n", "\\n").replace("\n", "\\n")


class ExpectedRefusals(logging.Filter):
    """Drops the traceback of a request refused on purpose (status below 500)."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class OneLinePerTask(logging.Filter):
    """Huey writes two lines for every task it runs ("Executing …", then "… executed in
    0.01s"); the second says all of it, and a failure has its own line. Keeps one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "huey"
            and record.levelno == logging.INFO
            and record.msg == "Executing %s"
        )
