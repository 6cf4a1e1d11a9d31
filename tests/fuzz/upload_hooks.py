"""Schemathesis hooks for the fuzz run: no case carries an upload block (`s3`, ...) as an object.

A valid one makes the server upload the outputs to S3, Azure, the Hub or an http_upload URL on
the internet, which the test machines cannot reach: the answer is then an honest 502
`upload_failed`, not a bug. The blocks run against real local services in tests/storage;
malformed values (a string, a number) still reach the server here and must get a 422.
"""

from __future__ import annotations

from typing import Any

import schemathesis

BLOCKS = ("s3", "azure_blob_upload", "azure_blob", "hf_upload", "http_upload")


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    return not (isinstance(body, dict) and any(isinstance(body.get(b), dict) for b in BLOCKS))
