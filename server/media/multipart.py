"""`multipart/form-data` on the JSON endpoints: the envelope as a JSON part or form fields, files
by field name.

A multipart request is turned into the JSON envelope the endpoint validates as usual; each file
part's bytes wait in `request.state.uploads` and its input field carries a placeholder until the
media step replaces it with the checked upload.

Parts understood:

- `request` (JSON object): the whole envelope, e.g. `{"input": {...}, "id": "..."}`;
- `input` (JSON object): the input; `input.<field>` or `<field>`: one input value (text);
- `id`, `webhook`, `webhook_v2` (text), `convert_output`, `credentials` (JSON);
- a part with a file name whose name is a media field (`image` or `input.image`): that file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from server.errors import ApiError
from server.media.inputs import UPLOAD_PLACEHOLDER

MAX_PARTS = 200
ENVELOPE_TEXT = ("id", "webhook", "webhook_v2")
ENVELOPE_JSON = ("convert_output", "credentials")


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data body into its parts (raise ApiError 400 when malformed)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise _bad("the multipart Content-Type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise _bad("the multipart body does not end with its closing boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise _bad("a multipart part is not framed by CRLF")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise _bad("a multipart part has no blank line after its headers")
        message = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                message[key.strip()] = value.strip()
        name = message.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise _bad("a multipart part has no name (Content-Disposition: form-data; name=...)")
        filename = message.get_param("filename", header="content-disposition")
        parts.append(Part(name, filename if isinstance(filename, str) else None,
                          message.get_content_type() if "content-type" in message else None,
                          data))
        if len(parts) > MAX_PARTS:
            raise _bad(f"more than {MAX_PARTS} multipart parts")
    return parts


def to_envelope(parts: list[Part], media_fields: frozenset[str]
                ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON envelope and the uploaded files by field name."""
    envelope: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    uploads: dict[str, bytes] = {}
    for part in parts:
        field = part.name.removeprefix("input.")
        if part.filename is not None:
            if field not in media_fields:
                known = ", ".join(sorted(media_fields)) or "none"
                raise _bad(f"file part {part.name!r} is not a media field of this workflow "
                           f"(media fields: {known})", loc=part.name)
            uploads[field] = part.data
            continue
        text = _text(part)
        if part.name == "request":
            value = _json(part.name, text)
            if not isinstance(value, dict):
                raise _bad("the `request` part must be a JSON object", loc="request")
            envelope.update(value)
        elif part.name == "input":
            value = _json(part.name, text)
            if not isinstance(value, dict):
                raise _bad("the `input` part must be a JSON object", loc="input")
            inputs.update(value)
        elif part.name in ENVELOPE_TEXT:
            envelope[part.name] = text
        elif part.name in ENVELOPE_JSON:
            envelope[part.name] = _json(part.name, text)
        else:
            inputs[field] = text
    if inputs:
        merged = envelope.get("input")
        envelope["input"] = {**(merged if isinstance(merged, dict) else {}), **inputs}
    for field in uploads:
        if not isinstance(envelope.get("input"), dict):
            envelope["input"] = {}
        envelope["input"][field] = UPLOAD_PLACEHOLDER + field
    return envelope, uploads


def uploads_digest(uploads: Mapping[str, bytes]) -> dict[str, str]:
    """sha256 of each uploaded file (for idempotency hashes)."""
    return {k: hashlib.sha256(v).hexdigest() for k, v in sorted(uploads.items())}


def media_route(media_fields: frozenset[str]) -> type[APIRoute]:
    """An APIRoute class that also accepts multipart/form-data for these media fields."""

    class MultipartRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                ctype = request.headers.get("content-type", "")
                if ctype.lower().startswith("multipart/form-data"):
                    request = await _as_json(request, ctype, media_fields)
                return await handler(request)

            return route

    return MultipartRoute


async def _as_json(request: Request, ctype: str, media_fields: frozenset[str]) -> Request:
    envelope, uploads = to_envelope(parse_multipart(await request.body(), ctype), media_fields)
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    scope["headers"].append((b"content-type", b"application/json"))
    converted = Request(scope, request.receive)
    converted._body = json.dumps(envelope).encode()
    converted.state.uploads = uploads
    return converted


def _text(part: Part) -> str:
    try:
        return part.data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"part {part.name!r} is not UTF-8 text (send files with a filename)",
                   loc=part.name) from None


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise _bad(f"part {name!r} is not valid JSON", loc=name) from None


def _bad(message: str, loc: str | None = None) -> ApiError:
    detail = [{"loc": ["body", *(loc.split(".", 1) if loc else [])], "msg": message,
               "type": "invalid_multipart"}]
    return ApiError(400, "invalid_multipart", f"invalid multipart request: {message}",
                    detail=detail)
