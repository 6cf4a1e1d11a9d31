"""The container readers on hand-built files, for the variants the test ComfyUI does not write:
an Ogg comment header spread over several pages, ID3v2.3 with UTF-16 text, an MP4 box with a
64-bit size, a Matroska segment of unknown size. (The files ComfyUI writes are read in
test_saved_files.py.)"""

from __future__ import annotations

import struct

import pytest

from comfygen.workflow.embedded import read_embedded

WORKFLOW = '{"nodes": [], "links": [], "note": "' + "x" * 70_000 + '"}'


def vorbis_block(**comments: str) -> bytes:
    entries = [f"{k}={v}".encode() for k, v in comments.items()]
    return (struct.pack("<I", 6) + b"Lavf62" + struct.pack("<I", len(entries))
            + b"".join(struct.pack("<I", len(e)) + e for e in entries))


def ogg_pages(packets: list[bytes], serial: int = 7) -> bytes:
    """Pages of at most 255 segments; a packet that does not fit goes on in the next page."""
    lacing: list[tuple[int, bytes]] = []
    for packet in packets:
        chunks = [packet[i:i + 255] for i in range(0, len(packet), 255)]
        if len(packet) % 255 == 0:
            chunks.append(b"")
        lacing += [(len(c), c) for c in chunks]
    out = b""
    for seq, start in enumerate(range(0, len(lacing), 255)):
        page = lacing[start:start + 255]
        header = b"OggS" + bytes([0, 0]) + struct.pack("<qIII", 0, serial, seq, 0)
        out += header + bytes([len(page)]) + bytes(s for s, _ in page) + b"".join(c for _, c in page)
    return out


def test_ogg_comment_header_across_pages():
    data = ogg_pages([b"OpusHead" + bytes(11),
                      b"OpusTags" + vorbis_block(prompt="{}", workflow=WORKFLOW)])
    found = read_embedded(data)
    assert found.container == "Ogg" and found.texts["workflow"] == WORKFLOW
    assert found.texts["prompt"] == "{}"


def test_flac_comment_block_after_streaminfo():
    comment = vorbis_block(workflow=WORKFLOW)
    data = (b"fLaC" + bytes([0]) + (34).to_bytes(3, "big") + bytes(34)
            + bytes([0x84]) + len(comment).to_bytes(3, "big") + comment)
    assert read_embedded(data).texts == {"workflow": WORKFLOW}


def syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


@pytest.mark.parametrize("version", [3, 4])
def test_id3_txxx_frames_in_utf16_and_latin1(version):
    utf16 = b"\x01" + "workflow\0".encode("utf-16") + "{\"n\": \"é\"}".encode("utf-16")[2:]
    latin = b"\x00prompt\x00{}"
    frames = b""
    for body in (utf16, latin):
        size = syncsafe(len(body)) if version == 4 else struct.pack(">I", len(body))
        frames += b"TXXX" + size + b"\0\0" + body
    data = b"ID3" + bytes([version, 0, 0]) + syncsafe(len(frames)) + frames + b"\xff\xfb"
    assert read_embedded(data).texts == {"workflow": '{"n": "é"}', "prompt": "{}"}


def box(kind: bytes, payload: bytes, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_mp4_mdta_keys_with_a_64_bit_box():
    keys = box(b"keys", b"\0\0\0\0" + struct.pack(">I", 1) + box(b"mdta", b"workflow"))
    item = box(struct.pack(">I", 1), box(b"data", struct.pack(">II", 1, 0) + WORKFLOW.encode()))
    meta = box(b"meta", b"\0\0\0\0" + box(b"hdlr", bytes(25)) + keys + box(b"ilst", item))
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", bytes(10), large=True) \
        + box(b"moov", box(b"udta", meta))
    assert read_embedded(data).texts == {"workflow": WORKFLOW}


def ebml(element: int, payload: bytes, unknown: bool = False) -> bytes:
    ident = element.to_bytes((element.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else \
        (len(payload) | (1 << 56)).to_bytes(8, "big")
    return ident + size + payload


def test_matroska_tags_in_a_segment_of_unknown_size():
    simple = ebml(0x67C8, ebml(0x45A3, b"WORKFLOW") + ebml(0x4487, WORKFLOW.encode()))
    tags = ebml(0x1254C367, ebml(0x7373, simple))
    data = ebml(0x1A45DFA3, ebml(0x4282, b"webm")) + ebml(0x18538067, tags, unknown=True)
    assert read_embedded(data).texts == {"workflow": WORKFLOW}


def test_a_text_file_is_not_a_container():
    with pytest.raises(ValueError, match="not a file type"):
        read_embedded(b"hello")
