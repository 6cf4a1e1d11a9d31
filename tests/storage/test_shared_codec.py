"""Shared jobs carry the upload block to the worker, never its credentials."""

from __future__ import annotations

import json

from comfygen.storage import AzureBlobUpload, HttpUpload, S3Upload
from server.execution.runner import Run
from server.jobs.manager import Submission
from server.jobs.shared.codec import dump, load


def test_upload_blocks_travel_without_credentials() -> None:
    secret = "s3-secret-0a1b2c3d4e5f"
    blocks = [S3Upload.model_validate({"bucket": "out-bucket", "prefix": "p/", "async": True,
                                       "credentials": {"access_key_id": "AKIA1",
                                                       "secret_access_key": secret}}),
              AzureBlobUpload(container="outs", blob_prefix="x/"),
              HttpUpload(url_prefix="https://uploads.example/put"), None]
    for block in blocks:
        sub = Submission(Run(id="r1", graph={}, storage=block), "prompt")
        wire = json.dumps(dump(sub))
        assert secret not in wire and "AKIA1" not in wire
        back = load(json.loads(wire)).run.storage
        if block is None:
            assert back is None
        else:
            assert type(back) is type(block)
            assert back.model_dump(exclude={"credentials"}) == block.model_dump(
                exclude={"credentials"})
            assert getattr(back, "credentials", None) is None
