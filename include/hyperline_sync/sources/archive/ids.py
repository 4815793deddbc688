"""The message ids of an archive object's track lines, read without transforming them.

Later days of the dedup window must know an earlier day's ids before that day has sent them
(`pipeline.id_index`). Decoding only `type` and `messageId` with msgspec skips everything else at
C speed: the cost is the gunzip plus well under a third of the transform's decode. Only top-level
fields are read, so a `messageId` inside properties or context is never taken for the message's.
A line that is not a JSON object, or whose `messageId` is not a non-blank string, has no id here,
as it has none in the transform (it is dead-lettered there).
"""

from __future__ import annotations

import logging

import msgspec

from hyperline_sync.sources.archive.listing import ArchiveObject
from hyperline_sync.sources.archive.reading import MAX_LINE_BYTES, CorruptObjectError, iter_line_chunks
from hyperline_sync.sources.archive.store import ArchiveStore

__all__ = ["object_message_ids"]

log = logging.getLogger(__name__)


class _Identity(msgspec.Struct):
    type: object = None
    messageId: object = None  # Segment's field name


_DECODE = msgspec.json.Decoder(_Identity).decode


def object_message_ids(store: ArchiveStore, obj: ArchiveObject, chunk_lines: int) -> list[str]:
    """The messageIds of the object's track lines, in line order. Of an object whose bytes are
    broken (CorruptObjectError), those of the chunks before the break, exactly what its own day's
    sync reads of it in chunks of `chunk_lines`. Any other read error (access, network, a missing
    object) is raised: the object may be read whole later."""
    ids: list[str] = []
    try:
        for chunk in iter_line_chunks(store, obj, chunk_lines):
            _add_ids(chunk.lines, ids)
    except CorruptObjectError as exc:
        log.warning("object %s: %s; its ids are those of the %d track lines before the break", obj.key,
                    exc.reason, len(ids))
    return ids


def _add_ids(lines: list[bytes], ids: list[str]) -> None:
    add = ids.append
    for line in lines:
        if len(line) > MAX_LINE_BYTES:
            continue
        try:
            if not line.isascii():
                line.decode()  # as the transform: invalid UTF-8 anywhere makes the line malformed
            message = _DECODE(line)
        except MemoryError:
            raise  # the process's state, not the line's
        except Exception:  # as in the transform, whatever one line raises (RecursionError when nested
            continue  # too deep) makes it a reject there: it has no id here
        message_id = message.messageId
        if message.type == "track" and type(message_id) is str and message_id and not message_id.isspace():
            add(message_id)
