"""A `Submission` as JSON, to travel from an API replica to a worker through Redis."""

from __future__ import annotations

from typing import Any

from comfygen.storage import AzureBlobUpload, HfUpload, HttpUpload, S3Upload
from server.execution.outputs import ConvertOutput
from server.execution.runner import Run
from server.jobs.manager import Submission


def dump(sub: Submission) -> dict[str, Any]:
    run = sub.run
    return {
        "run": {"id": run.id, "graph": run.graph,
                "nodes": list(run.nodes) if run.nodes is not None else None,
                "convert": run.convert.model_dump(mode="json") if run.convert else None,
                "input": run.input,
                "fields": [[node, name, field] for (node, name), field in run.fields.items()],
                # the media files the worker stages in its ComfyUI (bytes: P:job:{id}:media)
                "uploads": list(run.uploads),
                # model files to download: their URLs (signed queries) are in P:job:{id}:private
                "models": [[name, folder, file] for name, folder, _url, file in run.models],
                # without credentials (refused with shared jobs): the worker's environment's
                "storage": ([type(run.storage).__name__, run.storage.model_dump(
                    mode="json", by_alias=True, exclude={"credentials"})]
                    if run.storage else None)},
        "workflow": sub.workflow, "webhook": sub.webhook, "webhook_v2": sub.webhook_v2,
        "idempotency_key": sub.idempotency_key, "request_hash": sub.request_hash,
    }


def load(data: dict[str, Any]) -> Submission:
    raw = data["run"]
    run = Run(id=raw["id"], graph=raw["graph"],
              nodes=tuple(raw["nodes"]) if raw.get("nodes") is not None else None,
              convert=ConvertOutput(**raw["convert"]) if raw.get("convert") else None,
              input=raw.get("input"),
              fields={(node, name): field for node, name, field in raw.get("fields") or []},
              uploads=tuple(raw.get("uploads") or ()),
              models=tuple((name, folder, "", file) for name, folder, file in raw.get("models") or ()),
              storage=_storage(raw.get("storage")))
    return Submission(run, data["workflow"], data.get("webhook"), data.get("webhook_v2"),
                      data.get("idempotency_key"), data.get("request_hash"))


_TARGETS = {t.__name__: t for t in (S3Upload, AzureBlobUpload, HfUpload, HttpUpload)}


def _storage(raw: list[Any] | None) -> S3Upload | AzureBlobUpload | HfUpload | HttpUpload | None:
    return _TARGETS[raw[0]].model_validate(raw[1]) if raw else None
