"""Content sniffing and safe upload names."""

from __future__ import annotations

import pytest

from server.media import check_upload_name, looks_like_path, safe_upload_name, sniff

from . import samples


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (samples.png(), "image/png"),
        (samples.jpeg(), "image/jpeg"),
        (samples.animated_gif(2), "image/gif"),
        (samples.wav(), "audio/wav"),
        (samples.MP4, "video/mp4"),
        (samples.WEBM, "video/webm"),
        (samples.MP3, "audio/mpeg"),
        (samples.FLAC, "audio/flac"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
    ],
)
def test_sniff(data: bytes, mime: str) -> None:
    found = sniff(data)
    assert found is not None and found.mime == mime


@pytest.mark.parametrize("data", [b"", b"hello world", b"<svg xmlns='...'/>", b"%PDF-1.7", b"MZ"])
def test_sniff_unknown(data: bytes) -> None:
    assert sniff(data) is None


def test_upload_name_is_generated_and_plain() -> None:
    name = safe_upload_name("../../etc/passwd", "image/../x", "png", index=2)
    assert name.startswith("etc_passwd-image_x-2-") and name.endswith(".png")
    assert check_upload_name(name) == name
    assert safe_upload_name("r", "f", "png") != safe_upload_name("r", "f", "png")


@pytest.mark.parametrize("ext", ["../png", "png/", "", "p\x00", "PNG.exe.sh.aaaaaa"])
def test_upload_name_refuses_odd_extensions(ext: str) -> None:
    with pytest.raises(ValueError):
        safe_upload_name("r", "f", ext)


@pytest.mark.parametrize(
    "name",
    [
        "../a.png",
        "/abs.png",
        "a/b.png",
        "a\\b.png",
        "a\x00.png",
        ".hidden",
        "..",
        "",
        "-rf.png",
        "a..png",
        "x" * 201,
    ],
)
def test_check_upload_name_refuses(name: str) -> None:
    with pytest.raises(ValueError):
        check_upload_name(name)


@pytest.mark.parametrize(
    ("value", "is_path"),
    [
        ("/etc/passwd", True),
        ("../input/secret.png", True),
        ("..\\windows\\x", True),
        ("C:\\Users\\a.png", True),
        ("~/x.png", True),
        ("file:///etc/passwd", True),
        ("/opt/ComfyUI/input/a.png", True),
        ("a\x00b", True),
        ("/9j/4AAQSkZJRgABAQAAAQABAAD", False),
        ("iVBORw0KGgoAAAANSUhEUgAA", False),
    ],
)
def test_looks_like_path(value: str, is_path: bool) -> None:
    assert looks_like_path(value) is is_path
