"""`multipart/form-data` on the JSON endpoints: the envelope as a JSON part or form fields, files
by field name.

Starlette's form parser (python-multipart) reads the parts; they are turned into the JSON envelope
the endpoint validates as usual, handed on as the body of a new request. Each file part's bytes
wait in `request.state.uploads` and its input field carries a placeholder until the media step
replaces it with the checked upload.

Parts understood:

- `request` (JSON object): the whole envelope, e.g. `{"input": {...}, "id": "..."}`;
- `input` (JSON object): the input; `input.<field>` or `<field>`: one input value (text);
- `id`, `webhook`, `webhook_v2` (text), `convert_output`, `credentials` (JSON);
- a part with a file name whose name is a media field (`image` or `input.image`): that file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message

from server.errors import ApiError
from server.media.inputs import UPLOAD_PLACEHOLDER

MAX_PARTS = 200
ENVELOPE_TEXT = ("id", "webhook", "webhook_v2")
ENVELOPE_JSON = ("convert_output", "credentials")
CONVERTED_HEADERS = (b"content-type", b"content-length")


def to_envelope(parts: Sequence[tuple[str, str | bytes]], media_fields: frozenset[str]
                ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON envelope and the uploaded files by field name, from each part's name and its
    text (a field) or bytes (a file)."""
    envelope: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    uploads: dict[str, bytes] = {}
    for name, value in parts:
        field = name.removeprefix("input.")
        if isinstance(value, bytes):
            if field not in media_fields:
                known = ", ".join(sorted(media_fields)) or "none"
                raise _bad(f"file part {name!r} is not a media field of this workflow "
                           f"(media fields: {known})", loc=name)
            uploads[field] = value
        elif name == "request":
            request = _json(name, value)
            if not isinstance(request, dict):
                raise _bad("the `request` part must be a JSON object", loc="request")
            envelope.update(request)
        elif name == "input":
            input_ = _json(name, value)
            if not isinstance(input_, dict):
                raise _bad("the `input` part must be a JSON object", loc="input")
            inputs.update(input_)
        elif name in ENVELOPE_TEXT:
            envelope[name] = value
        elif name in ENVELOPE_JSON:
            envelope[name] = _json(name, value)
        else:
            inputs[field] = value
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


def media_route(media_fields: frozenset[str], base: type[APIRoute] = APIRoute) -> type[APIRoute]:
    """A route class (`base`'s) that also accepts multipart/form-data for these media fields."""

    class MultipartRoute(base):  # type: ignore[valid-type,misc]
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                ctype = request.headers.get("content-type", "")
                if ctype.lower().startswith("multipart/form-data"):
                    request = await _as_json(request, media_fields)
                return await handler(request)

            return route

    return MultipartRoute


async def _as_json(request: Request, media_fields: frozenset[str]) -> Request:
    """The same request with the envelope as its JSON body and the files in `state.uploads`."""
    envelope, uploads = to_envelope(await read_parts(request), media_fields)
    body = json.dumps(envelope).encode()
    sent = False

    async def receive() -> Message:  # the JSON body once, then the client's own messages
        nonlocal sent
        if sent:
            return await request.receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(k, v) for k, v in request.scope["headers"] if k not in CONVERTED_HEADERS]
    headers += [(b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]
    converted = Request({**request.scope, "headers": headers}, receive)
    converted.state.uploads = uploads
    return converted


async def read_parts(request: Request) -> list[tuple[str, str | bytes]]:
    """Each part's name and text (a field) or bytes (a file), parsed by Starlette's form parser
    (python-multipart); ApiError 400 when the body is malformed."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise _bad("the multipart Content-Type has no boundary")
    body = await request.body()  # the request keeps it: the form parser reads it from there
    if b"\r\n--" + boundary + b"--" not in body:  # python-multipart would return the parts
        raise _bad("the multipart body does not end with its closing boundary")  # so far
    parts: list[tuple[str, str | bytes]] = []
    try:
        async with request.form(max_files=MAX_PARTS, max_fields=MAX_PARTS,
                                max_part_size=request.app.state.settings.max_body_size) as form:
            for name, value in form.multi_items():
                if not name:
                    raise _bad("a multipart part has no name "
                               "(Content-Disposition: form-data; name=...)")
                if isinstance(value, UploadFile):
                    parts.append((name, await value.read()))
                elif value.isascii() or value.encode() in body:
                    parts.append((name, value))
                else:  # Starlette decodes a part that is not UTF-8 as Latin-1
                    raise _bad(f"part {name!r} is not UTF-8 text (send files with a filename)",
                               loc=name)
    except HTTPException as exc:  # Starlette's 400 for a malformed body
        if exc.status_code != 400:  # e.g. the body limit's 413
            raise
        raise _bad(str(exc.detail).rstrip(".")) from None
    if len(parts) > MAX_PARTS:
        raise _bad(f"more than {MAX_PARTS} multipart parts")
    return parts


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
