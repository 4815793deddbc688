"""The message ids of an archive object's track lines, read without transforming them.

Later days of the dedup window must know an earlier day's ids before that day has sent them
(`pipeline.id_index`). Decoding only `type` and `messageId` with msgspec skips everything else at
C speed: the cost is the gunzip plus well under a third of the transform's decode. Only top-level
fields are read, so a `messageId` inside properties or context is never taken for the message's.
A line that is not a JSON object, or whose `messageId` is not a non-blank string, has no id here,
as it has none in the transform (it is dead-lettered there).
"""

from __future__ import annotations

import msgspec

from hyperline_sync.sources.archive.listing import ArchiveObject
from hyperline_sync.sources.archive.reading import MAX_LINE_BYTES, iter_line_chunks
from hyperline_sync.sources.archive.store import ArchiveStore

__all__ = ["object_message_ids"]

_ID_CHUNK_LINES = 50_000


class _Identity(msgspec.Struct):
    type: object = None
    messageId: object = None  # Segment's field name


_DECODE = msgspec.json.Decoder(_Identity).decode


def object_message_ids(store: ArchiveStore, obj: ArchiveObject) -> list[str]:
    """The messageIds of the object's track lines, in line order (ArchiveReadError if unreadable)."""
    ids: list[str] = []
    add = ids.append
    for chunk in iter_line_chunks(store, obj, _ID_CHUNK_LINES):
        for line in chunk.lines:
            if len(line) > MAX_LINE_BYTES:
                continue
            try:
                if not line.isascii():
                    line.decode()  # as the transform: invalid UTF-8 anywhere makes the line malformed
                message = _DECODE(line)
            except (msgspec.DecodeError, ValueError):
                continue
            message_id = message.messageId
            if message.type == "track" and type(message_id) is str and message_id and not message_id.isspace():
                add(message_id)
    return ids
