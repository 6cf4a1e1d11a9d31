"""Media types from the first bytes of a file (magic numbers), never from names or headers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sniffed:
    """A recognised file type: MIME type and the extension an upload gets."""

    mime: str
    ext: str

    @property
    def family(self) -> str:
        """`image`, `video` or `audio`."""
        return self.mime.split("/", 1)[0]


PNG = Sniffed("image/png", "png")
JPEG = Sniffed("image/jpeg", "jpg")
GIF = Sniffed("image/gif", "gif")
WEBP = Sniffed("image/webp", "webp")
BMP = Sniffed("image/bmp", "bmp")
TIFF = Sniffed("image/tiff", "tiff")
AVIF = Sniffed("image/avif", "avif")
HEIC = Sniffed("image/heic", "heic")
MP4 = Sniffed("video/mp4", "mp4")
MOV = Sniffed("video/quicktime", "mov")
WEBM = Sniffed("video/webm", "webm")
MKV = Sniffed("video/x-matroska", "mkv")
AVI = Sniffed("video/x-msvideo", "avi")
WAV = Sniffed("audio/wav", "wav")
MP3 = Sniffed("audio/mpeg", "mp3")
AAC = Sniffed("audio/aac", "aac")
FLAC = Sniffed("audio/flac", "flac")
OGG = Sniffed("audio/ogg", "ogg")
M4A = Sniffed("audio/mp4", "m4a")

_FTYP_BRANDS: dict[bytes, Sniffed] = {
    b"avif": AVIF,
    b"avis": AVIF,
    b"heic": HEIC,
    b"heix": HEIC,
    b"mif1": HEIC,
    b"M4A ": M4A,
    b"M4B ": M4A,
    b"qt  ": MOV,
}


def sniff(data: bytes) -> Sniffed | None:
    """The type `data` starts like, or None when it is not a known media file."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": WEBP, b"WAVE": WAV, b"AVI ": AVI}.get(head[8:12])
    if head.startswith(b"BM") and len(head) >= 26:
        return BMP
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], MP4)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM if b"webm" in data[:4096] else MKV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"ID3"):
        return MP3
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return AAC
        if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 3:
            return MP3
    return None
