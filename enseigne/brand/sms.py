"""SMS length: characters, encoding and segments, as the network bills them.

GSM-7 (GSM 03.38) fits 160 septets in one message, 153 per segment once concatenated;
``^ { } [ ~ ] | € \\`` and form feed take two septets (escape + character) and an escape
pair is never split across segments. Any character outside GSM-7 switches the whole
message to UCS-2: 70 UTF-16 units in one message, 67 per segment, surrogate pairs kept
whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsLength:
    characters: int
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    non_gsm: tuple[str, ...] = ()  # the characters that forced UCS-2

    def as_dict(self) -> dict:
        return {
            "characters": self.characters,
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "non_gsm": list(self.non_gsm),
        }


def _septets(char: str) -> int | None:
    try:
        return len(char.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def _segments(sizes: list[int], single: int, multi: int) -> int:
    total = sum(sizes)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def measure(text: str) -> SmsLength:
    sizes = [_septets(c) for c in text]
    if all(size is not None for size in sizes):
        return SmsLength(len(text), "GSM-7", sum(sizes), _segments(sizes, GSM_SINGLE, GSM_MULTI))
    units = [len(c.encode("utf-16-le")) // 2 for c in text]
    non_gsm = tuple(dict.fromkeys(c for c, size in zip(text, sizes, strict=True) if size is None))
    return SmsLength(
        len(text), "UCS-2", sum(units), _segments(units, UCS2_SINGLE, UCS2_MULTI), non_gsm
    )
