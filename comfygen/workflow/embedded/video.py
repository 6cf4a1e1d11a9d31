"""Video metadata as ComfyUI's SaveVideo and SaveWEBM write it (comfy_extras/nodes_video.py,
comfy_api/latest/_input_impl/video_types.py): PyAV container metadata, which ffmpeg stores in MP4
as `mdta` keys with `use_metadata_tags`, and in Matroska/WebM as SimpleTags."""

from __future__ import annotations

import struct
from collections.abc import Iterator

MP4_CONTAINERS = (b"moov", b"udta")
MP4_UTF8 = 1
EBML_SEGMENT, EBML_TAGS, EBML_TAG, EBML_SIMPLE_TAG = 0x18538067, 0x1254C367, 0x7373, 0x67C8
EBML_TAG_NAME, EBML_TAG_STRING = 0x45A3, 0x4487
EBML_DESCEND = (EBML_SEGMENT, EBML_TAGS, EBML_TAG)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, content end) of each ISO-BMFF box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            head = 16
        elif size == 0:
            size = end - pos
        if size < head:
            raise IndexError(f"a {kind!r} box of {size} bytes")
        yield kind, pos + head, min(pos + size, end)
        pos += size


def _meta_texts(data: bytes, start: int, end: int) -> dict[str, str]:
    """A `meta` box: its `keys` (1-based, `mdta` names) and the `ilst` items that use them."""
    if data[start + 4:start + 8] != b"hdlr":  # the MP4 form is a full box: skip version+flags
        start += 4
    keys: list[str] = []
    texts: dict[str, str] = {}
    for kind, s, e in _boxes(data, start, end):
        if kind == b"keys":
            (count,) = struct.unpack_from(">I", data, s + 4)
            pos = s + 8
            for _ in range(count):
                (size,) = struct.unpack_from(">I", data, pos)
                keys.append(data[pos + 8:pos + size].decode("utf-8"))
                pos += size
        elif kind == b"ilst":
            for item, s2, e2 in _boxes(data, s, e):
                index = int.from_bytes(item, "big")
                for box, s3, e3 in _boxes(data, s2, e2):
                    kind_code = struct.unpack_from(">I", data, s3)[0] & 0xFFFFFF
                    if box == b"data" and kind_code == MP4_UTF8 and 0 < index <= len(keys):
                        texts.setdefault(keys[index - 1], data[s3 + 8:e3].decode("utf-8"))
    return texts


def mp4_texts(data: bytes) -> dict[str, str]:
    """The `mdta` metadata of an MP4/MOV file (moov/meta or moov/udta/meta)."""
    texts: dict[str, str] = {}

    def walk(start: int, end: int) -> None:
        for kind, s, e in _boxes(data, start, end):
            if kind in MP4_CONTAINERS:
                walk(s, e)
            elif kind == b"meta":
                for key, value in _meta_texts(data, s, e).items():
                    texts.setdefault(key, value)

    walk(0, len(data))
    return texts


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at `pos` -> (value, its length, all value bits set)."""
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise IndexError(f"a bad EBML number at byte {pos}")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, content start, content end) of each EBML element in data[start:end]."""
    pos = start
    while pos < end:
        element, id_len, _ = _vint(data, pos, keep_marker=True)
        size, size_len, unknown = _vint(data, pos + id_len, keep_marker=False)
        content = pos + id_len + size_len
        stop = end if unknown else min(content + size, end)
        yield element, content, stop
        # An element of unknown size (a live Segment or Cluster) is read into, not skipped.
        pos = content if unknown and element in (EBML_SEGMENT, 0x1F43B675) else stop


def matroska_texts(data: bytes) -> dict[str, str]:
    """SimpleTag name -> string of a Matroska/WebM file's Tags (ffmpeg upper-cases the names)."""
    texts: dict[str, str] = {}

    def walk(start: int, end: int) -> None:
        for element, s, e in _elements(data, start, end):
            if element in EBML_DESCEND:
                walk(s, e)
            elif element == EBML_SIMPLE_TAG:
                fields = {i: data[s2:e2] for i, s2, e2 in _elements(data, s, e)}
                if EBML_TAG_NAME in fields and EBML_TAG_STRING in fields:
                    texts.setdefault(fields[EBML_TAG_NAME].decode("utf-8"),
                                     fields[EBML_TAG_STRING].decode("utf-8").rstrip("\0"))

    walk(0, len(data))
    return texts
