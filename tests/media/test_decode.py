"""Decoding media field values: every accepted form, every refusal names the field."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from server.media import MediaError, MediaLimits, decode_media, validate_media
from server.security import StaticResolver, UrlGuard, UrlPolicy

from ..security.loopback import LoopbackServer, Reply
from . import samples

PNG = samples.png(8, 6)
B64 = base64.b64encode(PNG).decode()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        srv.route("/cat.png", Reply(body=PNG, headers={"Content-Type": "image/png"}))
        srv.route("/page", Reply(body=b"<html>hi</html>", headers={"Content-Type": "image/png"}))
        yield srv


def loopback_guard() -> UrlGuard:
    return UrlGuard(
        UrlPolicy(allow_cidrs=("127.0.0.0/8",)),
        resolver=StaticResolver({"images.test": "127.0.0.1"}),
    )


async def refused(value: str | bytes, kind: str = "image", **kwargs: object) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await decode_media("init_image", value, kind, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "init_image"
    return caught.value


@pytest.mark.parametrize(
    "value",
    [
        B64,
        "\n".join(B64[i : i + 60] for i in range(0, len(B64), 60)),
        B64.rstrip("="),
        base64.urlsafe_b64encode(PNG).decode(),
        f"data:image/png;base64,{B64}",
        f"DATA:image/jpeg;base64,{B64}",
        f"data:;base64,{B64}",
    ],
)
async def test_inline_forms(value: str) -> None:
    media = await decode_media("init_image", value, "image")
    assert (media.data, media.mime, media.ext, media.width, media.height) == (
        PNG,
        "image/png",
        "png",
        8,
        6,
    )


async def test_uploaded_bytes_and_mask() -> None:
    media = await decode_media("mask", samples.png(mode="L"), "mask")
    assert (media.kind, media.source) == ("mask", "upload")


async def test_url_through_the_guard(server: LoopbackServer) -> None:
    media = await decode_media(
        "init_image", server.url("/cat.png", host="images.test"), "image", guard=loopback_guard()
    )
    assert (media.data, media.source) == (PNG, "url")


async def test_url_refused_by_default_policy(server: LoopbackServer) -> None:
    error = await refused(server.url("/cat.png"), guard=UrlGuard(UrlPolicy()))
    assert (error.reason, error.status_code) == ("url_refused", 422)
    assert "not allowed" in error.message
    assert server.requests == []


async def test_redirect_to_metadata_refused(server: LoopbackServer) -> None:
    server.route("/go", Reply(302, headers={"Location": "http://169.254.169.254/latest/"}))
    error = await refused(server.url("/go"), guard=loopback_guard())
    assert error.reason == "url_refused"


async def test_urls_disabled() -> None:
    error = await refused("https://example.com/a.png")
    assert error.reason == "urls_disabled"
    error = await refused(
        "https://example.com/a.png", guard=loopback_guard(), limits=MediaLimits(allow_urls=False)
    )
    assert error.reason == "urls_disabled"


async def test_url_answering_html_is_not_an_image(server: LoopbackServer) -> None:
    error = await refused(server.url("/page"), guard=loopback_guard())
    assert (error.reason, error.status_code) == ("unsupported_type", 415)


async def test_url_too_large(server: LoopbackServer) -> None:
    error = await refused(
        server.url("/cat.png"), guard=loopback_guard(), limits=MediaLimits(max_bytes=10)
    )
    assert (error.reason, error.status_code) == ("too_large", 413)


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "../../ComfyUI/models/x.safetensors",
        "/opt/ComfyUI/input/example.png",
        "C:\\x.png",
        "a\x00b",
        "file:///etc/passwd",
    ],
)
async def test_paths_never_accepted(value: str) -> None:
    error = await refused(value)
    assert error.reason == "path_not_allowed"
    assert "base64" in error.message


@pytest.mark.parametrize("value", ["ftp://x/y.png", "gopher://a", "sftp://bucket/key.png"])
async def test_other_schemes(value: str) -> None:
    assert (await refused(value)).reason == "unsupported_url"


@pytest.mark.parametrize("value", ["not base64 at all!", "abcde", "data:image/png;base64,@@@"])
async def test_invalid_base64(value: str) -> None:
    assert (await refused(value)).reason == "invalid_base64"


async def test_empty() -> None:
    assert (await refused("   ")).reason == "empty"
    assert (await refused(b"")).reason == "empty"


async def test_non_image_is_415() -> None:
    error = await refused(base64.b64encode(b"just some text, not a picture").decode())
    assert (error.reason, error.status_code) == ("unsupported_type", 415)
    assert "expected image" in error.message


async def test_oversize_is_413_before_decoding() -> None:
    error = await refused("A" * 4000, limits=MediaLimits(max_bytes=1000))
    assert (error.reason, error.status_code) == ("too_large", 413)
    error = await refused(PNG, limits=MediaLimits(max_bytes=10))
    assert error.reason == "too_large"


async def test_pixel_bomb_is_refused_from_the_header() -> None:
    error = await refused(samples.png_claiming(60_000, 60_000))
    assert (error.reason, error.status_code) == ("too_many_pixels", 413)
    assert "too many pixels" in error.message


async def test_pixel_limit_setting() -> None:
    error = await refused(samples.png(100, 100), limits=MediaLimits(max_pixels=9_999))
    assert error.reason == "too_many_pixels" and "100x100" in error.message


async def test_frame_limit() -> None:
    error = await refused(samples.animated_gif(12), limits=MediaLimits(max_frames=10))
    assert error.reason == "too_many_frames"


async def test_truncated_image() -> None:
    error = await refused(PNG[: len(PNG) // 2])
    assert (error.reason, error.status_code) == ("invalid_image", 422)


async def test_video_and_audio_by_magic_numbers() -> None:
    assert (await validate_media("clip", samples.MP4, "video")).ext == "mp4"
    assert (await validate_media("clip", samples.WEBM, "video")).ext == "webm"
    assert (await validate_media("voice", samples.wav(), "audio")).ext == "wav"
    assert (await validate_media("voice", samples.MP3, "audio")).ext == "mp3"


async def test_kind_mismatch() -> None:
    error = await refused(samples.wav(), "video")
    assert error.reason == "unsupported_type" and "audio/wav" in error.message
    error = await refused(samples.MP4, "image")
    assert error.reason == "unsupported_type"


async def test_error_body_and_upload_name() -> None:
    error = await refused("/etc/passwd")
    assert (error.field, error.reason, error.message) == (
        "init_image", "path_not_allowed",
        "file paths are not accepted; send base64, a data URI or an http(s) URL")
    media = await decode_media("init_image", B64, "image")
    name = media.upload_name("req-42")
    assert name.startswith("req-42-init_image-") and name.endswith(".png")
