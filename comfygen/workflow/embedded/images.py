"""PNG text chunks and WebP EXIF, as ComfyUI's SaveImage, SaveAnimatedPNG and SaveAnimatedWEBP
write them (nodes.py, comfy_extras/nodes_images.py in ComfyUI 0.3.75)."""

from __future__ import annotations

import io
import struct

from PIL import Image

# SaveAnimatedWEBP writes `prompt:<json>` into EXIF tag 0x0110 (Model) and each extra_pnginfo
# entry `<key>:<json>` into 0x010F (Make), 0x010E, ... counting down.
WEBP_EXIF_TAGS = range(0x0100, 0x0111)


def png_texts(data: bytes) -> dict[str, str]:
    """tEXt, zTXt and iTXt chunks (through Pillow), plus APNG's private `comf` chunks."""
    with Image.open(io.BytesIO(data)) as img:
        texts = {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
    texts.update(_comf_chunks(data))
    return texts


def _comf_chunks(data: bytes) -> dict[str, str]:
    """SaveAnimatedPNG's `comf` chunks after the image data: `key NUL json` in Latin-1."""
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"comf" and b"\0" in body:
            key, _, value = body.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        pos += 12 + length
    return found


def webp_texts(data: bytes) -> dict[str, str]:
    """`key:value` strings in the EXIF tags SaveAnimatedWEBP fills."""
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
    texts: dict[str, str] = {}
    for tag in WEBP_EXIF_TAGS:
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and ":" in value:
            key, _, text = value.partition(":")
            texts.setdefault(key.strip(), text)
    return texts
