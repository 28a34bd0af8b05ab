"""SMS appended as JSON lines to a file (one file per day), for staging environments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

from enseigne.delivery.channels.base import OnResult, Outcome, Result, SmsOut, deliver_each


class FileSmsTransport:
    kind = "sms_file"
    lanes = 1

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, messages: Iterable[SmsOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, m: SmsOut) -> Result:
        path = self.folder / f"sms-{dt.date.today().isoformat()}.jsonl"
        line = {"id": m.message_id, "from": m.sender, "to": m.to, "text": m.text}
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return Result(Outcome.SENT, 200)

    def close(self) -> None:
        pass
