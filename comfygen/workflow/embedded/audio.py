"""Audio metadata as ComfyUI's SaveAudio, SaveAudioMP3 and SaveAudioOpus write it: PyAV container
metadata (comfy_extras/nodes_audio.py), which ffmpeg stores as FLAC and Ogg Vorbis comments and
as ID3v2 TXXX frames."""

from __future__ import annotations

import struct

FLAC_VORBIS_COMMENT = 4
ID3_ENCODINGS = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}


def vorbis_comments(data: bytes) -> dict[str, str]:
    """A Vorbis comment block: vendor string, then `KEY=value` entries (little-endian lengths)."""
    (vendor,) = struct.unpack_from("<I", data, 0)
    pos = 4 + vendor
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    texts: dict[str, str] = {}
    for _ in range(count):
        (size,) = struct.unpack_from("<I", data, pos)
        entry = data[pos + 4:pos + 4 + size]
        if len(entry) != size:
            raise IndexError("a comment runs past the end of its block")
        key, sep, value = entry.decode("utf-8").partition("=")
        if sep:
            texts.setdefault(key, value)
        pos += 4 + size
    return texts


def flac_texts(data: bytes) -> dict[str, str]:
    """The VORBIS_COMMENT metadata block of a FLAC file."""
    pos = 4
    while pos + 4 <= len(data):
        header = data[pos]
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        if header & 0x7F == FLAC_VORBIS_COMMENT:
            return vorbis_comments(data[pos + 4:pos + 4 + size])
        if header & 0x80:  # the last metadata block
            break
        pos += 4 + size
    return {}


def ogg_packets(data: bytes, wanted: int) -> list[bytes]:
    """The first `wanted` packets of the first logical stream of an Ogg file (pages reassembled)."""
    packets: list[bytes] = []
    current = bytearray()
    pos = 0
    serial = None
    while pos + 27 <= len(data) and len(packets) < wanted:
        if data[pos:pos + 4] != b"OggS":
            raise IndexError(f"no Ogg page at byte {pos}")
        page_serial, segments = struct.unpack_from("<I", data, pos + 14)[0], data[pos + 26]
        lacing = data[pos + 27:pos + 27 + segments]
        body = pos + 27 + segments
        serial = page_serial if serial is None else serial
        for size in lacing:
            if page_serial == serial:
                current += data[body:body + size]
                if size < 255:
                    packets.append(bytes(current))
                    current.clear()
            body += size
        pos = body
    return packets


def ogg_texts(data: bytes) -> dict[str, str]:
    """The comment header (second packet) of an Ogg Opus or Ogg Vorbis stream."""
    packets = ogg_packets(data, 2)
    if len(packets) < 2:
        return {}
    tags = packets[1]
    for magic in (b"OpusTags", b"\x03vorbis"):
        if tags.startswith(magic):
            return vorbis_comments(tags[len(magic):])
    return {}


def _syncsafe(raw: bytes) -> int:
    return (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]


def id3_texts(data: bytes) -> dict[str, str]:
    """TXXX (user text) frames of an ID3v2.3 or v2.4 tag: description -> value."""
    major, flags = data[3], data[5]
    end = 10 + _syncsafe(data[6:10])
    pos = 10
    if flags & 0x40:  # an extended header
        pos += _syncsafe(data[10:14]) if major == 4 else 4 + int.from_bytes(data[10:14], "big")
    texts: dict[str, str] = {}
    while pos + 10 <= end and data[pos:pos + 4].strip(b"\0"):
        frame, raw = data[pos:pos + 4], data[pos + 4:pos + 8]
        size = _syncsafe(raw) if major == 4 else int.from_bytes(raw, "big")
        body = data[pos + 10:pos + 10 + size]
        if frame == b"TXXX" and body and body[0] in ID3_ENCODINGS:
            codec = ID3_ENCODINGS[body[0]]
            text = body[1:].decode(codec)
            description, _, value = text.partition("\0")
            texts.setdefault(description, value.rstrip("\0"))
        pos += 10 + size
    return texts
