"""Metrics, JSON logs and timings after real runs on ComfyUI 0.3.75 (a real uvicorn serves the app,
with the log configuration `comfygen serve` uses)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from server.app import create_app
from server.observability.logs import log_config
from tests.comfyui_testing import slow_graph
from tests.jobs_api.live import live, wait_state
from tests.server.helpers import SECRET, settings_for
from tests.server.server_workflows import registry

pytestmark = pytest.mark.comfyui

API_KEY = "obs-Api-Key-5f1c2d9e"
URL_PASSWORD = "urlPassw0rd-77aa"
URL_TOKEN = "qsToken-91bb"
MEDIA_BEARER = "mediaBearer-3c3c"
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "comfygen", "server", "httpx")


@contextlib.contextmanager
def kept_logging() -> Iterator[None]:
    """Restore the loggers that `log_config` reconfigures."""
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in LOGGERS}
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def served(app: FastAPI, stream: io.StringIO) -> AbstractAsyncContextManager[str]:
    """`app` under uvicorn with the JSON log configuration writing into `stream`."""
    return live(app, log_config=log_config("json", "info", stream=stream), log_level="info")


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text body, by (name, sorted labels)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def png(size: tuple[int, int] = (8, 6)) -> bytes:
    out = io.BytesIO()
    color = (random.randrange(256), random.randrange(256), random.randrange(256))
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()



async def test_metrics_logs_and_timings_after_real_runs(comfyui: ComfyUIProcess) -> None:
    dead_port = free_port()
    hook = (f"http://hookuser:{URL_PASSWORD}@127.0.0.1:{dead_port}/hook?token={URL_TOKEN}")
    settings = settings_for(
        comfyui, api_key=API_KEY, webhook_max_attempts=1, webhook_timeout=2,
        media_url_credentials={"http://127.0.0.1:1/*": {"Authorization": f"Bearer {MEDIA_BEARER}"}})
    stream = io.StringIO()
    key = {"X-API-Key": API_KEY}
    with kept_logging():
        async with served(create_app(settings, registry()), stream) as url, \
                httpx.AsyncClient(base_url=url, timeout=60, headers=key) as http:
            assert (await httpx.AsyncClient(base_url=url).get("/metrics")).status_code == 401
            first = await http.get("/metrics")
            assert first.status_code == 200
            assert first.headers["content-type"].startswith("text/plain")
            before = scrape(first.text)

            # 1. success, sync, with a media input; X-Request-ID round-trips
            image = png()
            r = await http.post("/workflow/test/scale", headers={"X-Request-ID": "req-sync-1"},
                                json={"input": {"image": base64.b64encode(image).decode()}})
            assert r.status_code == 200, r.text
            assert r.headers["x-request-id"] == "req-sync-1"
            stats = r.json()["stats"]
            assert {"preprocess_time", "comfy_round_trip", "comfy_execution",
                    "postprocess_time", "total_time"} <= set(stats)  # comfyui-api's keys stay
            assert stats["queue_ms"] >= 0 and stats["outputs_ms"] >= 0
            assert stats["execution_ms"] > 0
            sync_nodes = stats["nodes"]
            graph = r.json()["prompt"]
            assert {n["node"] for n in sync_nodes} == set(graph)
            assert all(n["class_type"] == graph[n["node"]]["class_type"] for n in sync_nodes)
            assert not any(n["cached"] for n in sync_nodes)

            # 2. success, async job (request id made: a UUID)
            r = await http.post("/workflow/test/invert", headers={"Prefer": "respond-async"},
                                json={"input": {"color": random.randrange(0xFFFFFF)}})
            assert r.status_code == 202, r.text
            made = r.headers["x-request-id"]
            assert str(uuid.UUID(made)) == made
            async_job = await wait_state(http, r.json()["job_id"], {"succeeded", "failed"})
            assert async_job["state"] == "succeeded", async_job
            timings = async_job["timings"]
            assert timings["queue_ms"] >= 0 and timings["execution_ms"] >= 0
            assert timings["nodes"] == async_job["result"]["stats"]["nodes"]
            assert {n["class_type"] for n in timings["nodes"]} == {
                "EmptyImage", "ImageInvert", "SaveImage"}

            # 3. validation failure (ComfyUI rejects the graph: 400), as a job with a webhook
            #    whose URL carries credentials; the delivery fails (nothing listens there)
            bad = {"1": {"class_type": "EmptyImage",
                         "inputs": {"width": 10**9, "height": 8, "batch_size": 1, "color": 0}},
                   "2": {"class_type": "SaveImage",
                         "inputs": {"images": ["1", 0], "filename_prefix": "p"}}}
            r = await http.post("/prompt", json={"prompt": bad, "webhook": hook})
            assert r.status_code == 202, r.text
            failed = await wait_state(http, r.json()["job_id"], {"failed"})
            assert failed["error"]["status"] == 400 and failed["timings"] is None

            # 4. cancel a running job
            r = await http.post("/prompt", headers={"Prefer": "respond-async"},
                                json={"prompt": slow_graph(blurs=30,
                                                           color=random.randrange(99999))})
            cancel_id = r.json()["job_id"]
            await wait_state(http, cancel_id, {"running"})
            r = await http.delete(f"/jobs/{cancel_id}")
            assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text

            # 5. a URL the guard refuses: 422, and no run
            r = await http.post("/prompt", json={"prompt": bad, "webhook": "http://10.9.8.7/x"})
            assert r.status_code == 422, r.text

            # a message that names secrets must come out scrubbed
            logging.getLogger("comfygen.test").warning(
                "calling %s with key %s, secret %s, auth Bearer %s", hook, API_KEY, SECRET,
                MEDIA_BEARER)

            # wait until the webhook of the failed job has given up and the cancel has settled
            async with asyncio.timeout(30):
                while True:
                    after = scrape((await http.get("/metrics")).text)
                    if (delta(before, after, "comfygen_webhook_deliveries_total",
                              result="failed") >= 1
                            and delta(before, after, "comfygen_jobs_total", workflow="prompt",
                                      status="cancelled") >= 1):
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # the ComfyUI queue depth (read at most once a second)
            after = scrape((await http.get("/metrics")).text)

    # -- counters moved by exactly the right amounts
    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    assert d("comfygen_jobs_total", workflow="test/scale", status="succeeded") == 1
    assert d("comfygen_jobs_total", workflow="test/invert", status="succeeded") == 1
    assert d("comfygen_jobs_total", workflow="prompt", status="failed") == 1
    assert d("comfygen_jobs_total", workflow="prompt", status="cancelled") == 1
    assert d("comfygen_jobs_total", workflow="prompt", status="succeeded") == 0
    assert d("comfygen_job_errors_total", workflow="prompt", type="comfyui_validation") == 1
    for workflow in ("test/scale", "test/invert"):
        for phase in ("queue", "execute", "outputs"):
            assert d("comfygen_job_duration_seconds_count", workflow=workflow, phase=phase) == 1
            assert d("comfygen_job_duration_seconds_bucket", workflow=workflow, phase=phase,
                     le="+Inf") == 1
    for phase in ("queue", "execute", "outputs"):
        assert d("comfygen_job_duration_seconds_count", workflow="prompt", phase=phase) == 0
    executed = Counter(n["class_type"] for n in sync_nodes + timings["nodes"])
    for class_type, times in executed.items():
        assert d("comfygen_node_duration_seconds_count", class_type=class_type) == times
    assert d("comfygen_node_duration_seconds_count", class_type="ImageBlur") == 0
    assert d("comfygen_webhook_deliveries_total", result="failed") == 1
    assert d("comfygen_webhook_deliveries_total", result="delivered") == 0
    assert d("comfygen_url_guard_refusals_total") == 1
    assert d("comfygen_media_bytes_in_total", kind="image") == len(image)
    assert after[("comfygen_comfyui_up", ())] == 1
    assert after[("comfygen_queue_depth", ())] == 0
    assert d("comfygen_comfyui_restarts_total") == 0
    route = (("method", "POST"), ("route", "/workflow/test/scale"), ("status", "200"))
    assert after[("comfygen_http_requests_total", route)] - before.get(
        ("comfygen_http_requests_total", route), 0) == 1
    assert d("comfygen_http_requests_total", method="DELETE", route="/jobs/{job_id}",
             status="200") == 1
    assert d("comfygen_http_requests_total", method="POST", route="/prompt", status="422") == 1
    assert d("comfygen_http_request_duration_seconds_count", method="POST",
             route="/workflow/test/scale") == 1
    assert not any("req-sync-1" in str(k) or cancel_id in str(k) for k in after)

    # -- JSON log lines parse and carry the ids; no secret anywhere
    text = stream.getvalue()
    for secret in (API_KEY, SECRET, SECRET.removeprefix("whsec_"), URL_PASSWORD, URL_TOKEN,
                   MEDIA_BEARER):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    sync_lines = [line for line in lines if line.get("request_id") == "req-sync-1"]
    access = [line for line in sync_lines if line["logger"] == "uvicorn.access"]
    assert len(access) == 1 and access[0]["status_code"] == 200
    assert access[0]["path"] == "/workflow/test/scale"
    run_line = next(line for line in sync_lines if line["logger"] == "comfygen.runs")
    assert run_line["workflow"] == "test/scale" and run_line["outcome"] == "succeeded"
    assert uuid.UUID(run_line["prompt_id"]) and run_line["job_id"] is None
    job_lines = [line for line in lines if line.get("job_id") == async_job["id"]]
    assert job_lines and all(line["request_id"] == made for line in job_lines)
    assert any(line.get("prompt_id") == async_job["prompt_id"] for line in job_lines)
    assert any(line.get("outcome") == "cancelled" and line.get("job_id") == cancel_id
               for line in lines)
    failed_lines = [line for line in lines if line.get("job_id") == failed["id"]]
    assert any(line.get("outcome") == "failed" for line in failed_lines)
    assert any("not delivered" in line["message"] for line in failed_lines), failed_lines
    scrubbed = next(line for line in lines if line["logger"] == "comfygen.test")
    assert scrubbed["message"].count("***") >= 4, scrubbed
