"""SMS length and segment count: what a message will cost before it is sent.

Carriers bill by segment, and one character outside the GSM-7 alphabet switches the whole message
to UCS-2, which more than halves the room per segment. Showing the count at save time is how a
marketer finds out that a curly apostrophe made their SMS three segments instead of one.

- GSM-7 (3GPP TS 23.038): the basic table costs one septet per character, the extension table
  (`^ { } \\ [ ~ ] | €` and form feed) two (escape + character). 160 septets fit one message;
  a concatenated message carries 153 per segment (the user data header takes 7), and a two-septet
  character is never split across segments.
- UCS-2: counted in UTF-16 code units (an emoji outside the basic plane takes two). 70 units fit
  one message, 67 per segment once concatenated, and a surrogate pair is never split.
"""

from __future__ import annotations

from typing import Literal

from ecrm.core.contract import Contract

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7 = 160
SEGMENT_GSM7 = 153
SINGLE_UCS2 = 70
SEGMENT_UCS2 = 67


class SmsStats(Contract):
    """What a rendered SMS costs: shown at save time (with sample data) and on every render."""

    characters: int
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # room per segment at this length: 160/153 or 70/67
    non_gsm_characters: list[str]  # why the message is UCS-2, in order of appearance


def sms_stats(text: str) -> SmsStats:
    non_gsm = [c for c in dict.fromkeys(text) if c not in GSM7_BASIC and c not in GSM7_EXTENSION]
    if not non_gsm:
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        units = sum(costs)
        single, per_segment = SINGLE_GSM7, SEGMENT_GSM7
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
        units = sum(costs)
        single, per_segment = SINGLE_UCS2, SEGMENT_UCS2
        encoding = "UCS-2"
    if units <= single:
        segments = 1 if text else 0
        room = single
    else:
        segments = _segments(costs, per_segment)
        room = per_segment
    return SmsStats(
        characters=len(text),
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=room,
        non_gsm_characters=non_gsm[:20],
    )


def _segments(costs: list[int], per_segment: int) -> int:
    """Fill segments in order: a two-unit character that does not fit starts the next segment."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return segments
