"""Small JSON documents compressed for DynamoDB, which bills a write per KB of the item: zlib with a preset
dictionary.

An item rewritten at every step of its life (a broadcast message: its status and history, and the events of
the transition in the same item, ADR 11) is a few hundred bytes of JSON whose keys and common values repeat
from one item to the next. Plain zlib halves it; it cannot shrink what it has not seen yet in the same
document, and these documents are too short to teach it much. A preset dictionary holds that vocabulary, so
a message's `sent` item, with its status, history and `MessageSent`, packs to about 55% of what plain zlib
made of it (a campaign email's item with SES's message id: doc 394 -> 242 bytes, events 378 -> 182), and
stays under the 1 KB one write unit covers where it used to take two.

The zlib stream names its dictionary (the FDICT flag and the dictionary's Adler-32 in its header), so
`unpack` finds the dictionary a document was packed with, and reads plain zlib too (what was written before
this dictionary). A dictionary is therefore never edited: a better one is added under its own checksum, and
`pack` moves to it, while the older ones stay readable for as long as any item packed with them lives.
"""

from __future__ import annotations

import zlib

# Version 1: the vocabulary of a broadcast message's document and of an event envelope as the outbox stores it.
# zlib finds its matches nearest the end best: the most common strings come last. NEVER EDIT (see above).
DICTIONARY_V1 = (
    b"MessageDeferredMessageSuppressedMessageFailedMessageBouncedMessageComplainedMessageOpenedMessageClicked"
    b'"transactional","journey:","trigger:","sms","push","whatsapp","voice","in_app","webhook","topic":"'
    b'"templates":{"email":{"template_id":"tpl_","version":1,"locale":"en"}},"deferred_until":"","reason":"'
    b'{"purpose":"marketing","source":"campaign:","step":"","requested_channel":"email","channel":"email",'
    b'"address":"","fingerprint":"","requested_at":"","updated_at":"","attempts":1,"lease_until":"",'
    b'"provider_message_id":"","history":[{"at":"","status":"requested"},{"at":"","status":"queued","detail":'
    b'{"policy":"email: chosen"}},{"at":"","status":"sending","detail":{"attempt":"1"}},{"at":"","status":"sent",'
    b'"detail":{"provider_message_id":""}},{"at":"","status":"delivered"}]}'
    b'[{"id":"evt_","source":"ecrm.broadcast","detail_type":"MessageRequestedMessageSentMessageDelivered",'
    b'"detail":"{\\"metadata\\":{\\"id\\":\\"evt_\\",\\"version\\":\\"1\\",\\"correlation_id\\":\\"cor_\\",'
    b'\\"occurred_at\\":\\"2026-12-07T\\"},\\"data\\":{\\"message_id\\":\\"msg_\\",\\"customer_id\\":\\"cus_\\",'
    b'\\"channel\\":\\"email\\",\\"purpose\\":\\"marketing\\",\\"topic\\":null,\\"source\\":\\"campaign:\\",'
    b'\\"step\\":\\"\\",\\"status\\":\\"\\",\\"reason\\":null,\\"occurred_at\\":\\"2026-12-07T\\",'
    b'\\"requested_at\\":\\"2026-12-07T\\"}}","time":"2026-12-07T+00:00"}]'
)
DICTIONARIES = {zlib.adler32(DICTIONARY_V1): DICTIONARY_V1}
CURRENT = DICTIONARY_V1
FDICT = 0x20  # the flag byte's bit saying a dictionary id follows (RFC 1950, 2.2)


def pack(data: bytes) -> bytes:
    """`data` compressed with the current dictionary."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY, CURRENT)
    return packer.compress(data) + packer.flush()


def unpack(data: bytes) -> bytes:
    """What `pack` (any dictionary it has used) or plain `zlib.compress` made of some bytes."""
    if len(data) < 6 or not data[1] & FDICT:
        return zlib.decompress(data)
    dictionary = DICTIONARIES.get(int.from_bytes(data[2:6], "big"))
    if dictionary is None:
        raise ValueError("packed with a dictionary this version does not know")
    unpacker = zlib.decompressobj(zlib.MAX_WBITS, dictionary)
    return unpacker.decompress(data) + unpacker.flush()
