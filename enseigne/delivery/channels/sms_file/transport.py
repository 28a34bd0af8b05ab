"""SMS appended as JSON lines to a file (one file per day), for staging environments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

from enseigne.delivery.channels.base import Outcome, Result, SmsOut


class FileSmsTransport:
    kind = "sms_file"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, messages: Iterable[SmsOut]) -> list[Result]:
        messages = list(messages)
        path = self.folder / f"sms-{dt.date.today().isoformat()}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            for m in messages:
                handle.write(
                    json.dumps(
                        {"id": m.message_id, "from": m.sender, "to": m.to, "text": m.text},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        return [Result(Outcome.SENT, 200) for _ in messages]

    def close(self) -> None:
        pass
