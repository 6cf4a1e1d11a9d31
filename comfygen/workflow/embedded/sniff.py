"""Find a file's container by its first bytes and read the texts ComfyUI embedded in it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from comfygen.workflow.embedded import audio, images, video

# (name, does the file start like this?, reader of its {key: text} metadata)
Reader = Callable[[bytes], dict[str, str]]
CONTAINERS: tuple[tuple[str, Callable[[bytes], bool], Reader], ...] = (
    ("PNG", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), images.png_texts),
    ("WebP", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP", images.webp_texts),
    ("FLAC", lambda b: b.startswith(b"fLaC"), audio.flac_texts),
    ("Ogg", lambda b: b.startswith(b"OggS"), audio.ogg_texts),
    ("MP3", lambda b: b.startswith(b"ID3"), audio.id3_texts),
    ("MP4", lambda b: b[4:8] == b"ftyp", video.mp4_texts),
    ("WebM/Matroska", lambda b: b.startswith(b"\x1a\x45\xdf\xa3"), video.matroska_texts),
)


@dataclass(frozen=True)
class EmbeddedTexts:
    """What a saved file carries: its container's name and its metadata texts by lower-case key."""

    container: str
    texts: dict[str, str]


def container_of(head: bytes) -> str | None:
    """The container a file starting with `head` is in, if it is one that ComfyUI saves."""
    return next((name for name, match, _ in CONTAINERS if match(head)), None)


def read_embedded(data: bytes) -> EmbeddedTexts:
    """The metadata texts of a saved image, audio or video file; ValueError when malformed."""
    for name, match, reader in CONTAINERS:
        if match(data):
            try:
                texts = reader(data)
            except (IndexError, KeyError, OSError, EOFError, UnicodeDecodeError) as exc:
                raise ValueError(f"not a readable {name} file ({exc})") from exc
            return EmbeddedTexts(name, {k.lower(): v for k, v in texts.items()})
    raise ValueError("not a file type that ComfyUI saves workflows in")
