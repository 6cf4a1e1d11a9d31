"""Things dying: a worker SIGKILLed mid-job (the job is taken over), Redis restarted (AOF)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from tests.comfyui_testing import invert_graph, slow_graph
from tests.conftest import ROOT
from tests.jobs_api.live import comfy_queue, wait_state
from tests.server.webhook_receiver import Receiver
from tests.shared_jobs.topology import ASYNC, topology
from tests.shared_jobs.valkey import Valkey

pytestmark = pytest.mark.comfyui
CLAIM_TIMEOUT = 3.0


class WorkerProcess:
    """`tests/shared_jobs/worker_process.py` (a worker, or with COMFYGEN_ROLE=api an API
    replica), restartable, killable."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    async def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.shared_jobs.worker_process"], cwd=ROOT,
            env={**os.environ, **self.env, "COMFYGEN_PORT": str(port),
                 "PYTHONPATH": str(ROOT)})
        async with httpx.AsyncClient(base_url=self.url) as http, asyncio.timeout(60):
            while True:
                assert self.proc.poll() is None, "the worker process exited"
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def worker_env(comfyui: ComfyUIProcess, valkey: Valkey, prefix: str,
               **extra: Any) -> dict[str, str]:
    from tests.server.helpers import SECRET

    env = {"COMFYGEN_ROLE": "worker", "COMFYGEN_REDIS_URL": valkey.url,
           "COMFYGEN_REDIS_PREFIX": prefix, "COMFYGEN_COMFYUI_URL": comfyui.url,
           "COMFYGEN_COMFYUI_OUTPUT_DIR": str(comfyui.base_dir / "output"),
           "COMFYGEN_COMFYUI_TEMP_DIR": str(comfyui.base_dir / "temp"),
           "COMFYGEN_WEBHOOK_SECRET": SECRET, "COMFYGEN_WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8",
           "COMFYGEN_JOB_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT), "COMFYGEN_LOG_LEVEL": "warning",
           "COMFYGEN_JOBS_DB": "/tmp/comfygen-unused-jobs.sqlite3"}
    env.update({f"COMFYGEN_{k.upper()}": str(v) for k, v in extra.items()})
    return env


async def running_on(comfyui: ComfyUIProcess) -> bool:
    return bool((await comfy_queue(comfyui))["queue_running"])


async def test_sigkilled_worker_jobs_are_taken_over(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess,
        processes: list[WorkerProcess]) -> None:
    receiver = await Receiver().start()
    try:
        # worker 1 in this process on `comfyui`; worker 2 a process of its own on `comfyui2`
        async with topology(valkey, [comfyui], job_claim_timeout=CLAIM_TIMEOUT) as top:
            a, b = top.api
            worker = WorkerProcess(worker_env(comfyui2, valkey, top.prefix))
            processes.append(worker)
            await worker.start()
            ids: list[str] = []
            kills = 0
            t0 = time.monotonic()
            for round_ in range(5):  # 50 jobs, 5 kills
                batch = [(await top.api[i % 2].post(
                    "/prompt", json={"prompt": slow_graph(blurs=3, size=160,
                                                          color=0x100000 * round_ + i),
                                     "webhook_v2": receiver.url}, headers=ASYNC)).json()["job_id"]
                    for i in range(10)]
                ids += batch
                async with asyncio.timeout(60):  # a job running on the worker process...
                    while not await running_on(comfyui2):
                        await asyncio.sleep(0.05)
                worker.kill()  # ... is killed mid-run
                kills += 1
                await worker.start()
            for job_id in ids:
                job = await wait_state(b, job_id, {"succeeded", "failed", "cancelled"}, 180)
                assert job["state"] == "succeeded", job
            took = time.monotonic() - t0
            redis = Redis.from_url(valkey.url, decode_responses=True)
            attempts = [int(await redis.hget(f"{top.prefix}:job:{j}", "attempt") or 0)
                        for j in ids]
            await redis.aclose()
            taken_over = sum(1 for n in attempts if n >= 2)
            assert taken_over >= 1, attempts  # the kills did hit running jobs
            await receiver.wait_for(len(ids), 30)
            await asyncio.sleep(1)  # a duplicate would arrive now
            per_id = collections.Counter(h["webhook-id"] for h, _ in receiver.received)
            assert len(per_id) == len(ids) and set(per_id.values()) == {1}, per_id
            print(f"\n{len(ids)} jobs, {kills} worker SIGKILLs, {taken_over} jobs taken over: "
                  f"all succeeded in {took:.1f} s; {len(receiver.received)} webhooks, one per "
                  "webhook-id")
            async with asyncio.timeout(30):  # the killed worker's prompt ends; nothing is left
                while any([(q := await comfy_queue(c))["queue_running"] or q["queue_pending"]
                           for c in (comfyui, comfyui2)]):
                    await asyncio.sleep(0.1)
    finally:
        await receiver.stop()


async def test_dead_letter_after_max_attempts(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess,
        processes: list[WorkerProcess]) -> None:
    """The only worker is SIGKILLed while it runs the job; the worker started next takes the job
    over, finds it out of attempts (1) and dead-letters it instead of running it again."""
    from server.app import create_app
    from tests.jobs_api.live import live
    from tests.shared_jobs.topology import shared_settings

    limits = {"job_claim_timeout": CLAIM_TIMEOUT, "job_max_attempts": 1}
    async with topology(valkey, [], apis=2, api_comfyui=comfyui, **limits) as top:
        a, b = top.api
        worker = WorkerProcess(worker_env(comfyui2, valkey, top.prefix, job_max_attempts=1))
        processes.append(worker)
        await worker.start()
        # a colour no other run used: a cached graph would end before the kill
        graph = slow_graph(blurs=6, size=512, color=random.randrange(0xFFFFFF))
        job_id = (await a.post("/prompt", json={"prompt": graph},
                               headers=ASYNC)).json()["job_id"]
        await wait_state(b, job_id, {"running"}, 60)
        # the kill only once this very prompt runs in the worker's ComfyUI
        redis = Redis.from_url(valkey.url, decode_responses=True)
        prompt_id = await redis.hget(f"{top.prefix}:job:{job_id}", "prompt_id")
        await redis.aclose()
        async with asyncio.timeout(60):
            while not any(item[1] == prompt_id
                          for item in (await comfy_queue(comfyui2))["queue_running"]):
                await asyncio.sleep(0.05)
        worker.kill()
        settings = shared_settings(comfyui, valkey, top.prefix, "worker", **limits)
        async with live(create_app(settings, {})):
            job = await wait_state(b, job_id, {"succeeded", "failed"}, 60)
        assert job["state"] == "failed" and job["error"]["type"] == "dead_letter", job
        assert "COMFYGEN_JOB_MAX_ATTEMPTS=1" in job["error"]["error"]


async def test_redis_down_then_restarted(valkey: Valkey, comfyui: ComfyUIProcess,
                                         comfyui2: ComfyUIProcess) -> None:
    async with topology(valkey, [comfyui, comfyui2]) as top:
        a, b = top.api
        ids = [(await top.api[i % 2].post(
            "/prompt", json={"prompt": slow_graph(blurs=3, size=256, color=i)},
            headers=ASYNC)).json()["job_id"] for i in range(6)]
        await wait_state(a, ids[0], {"running"})
        assert valkey.proc is not None
        valkey.proc.send_signal(signal.SIGKILL)  # no goodbye: the AOF is all that is left
        valkey.proc.wait(10)
        try:
            t0 = time.monotonic()
            r = await a.post("/prompt", json={"prompt": invert_graph(0x102030, size=8)},
                             headers=ASYNC)
            refused = time.monotonic() - t0
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "queue_unavailable" and r.headers["retry-after"]
            t0 = time.monotonic()
            ready = await b.get("/ready")
            unready = time.monotonic() - t0
            assert ready.status_code == 503 and ready.json()["status"] == "not ready"
            r = await b.post("/prompt", json={"prompt": invert_graph(0x102030, size=8)})
            assert r.status_code == 503
            print(f"\nRedis down: POST answered 503 in {refused:.3f} s, /ready 503 in "
                  f"{unready:.3f} s")
            assert refused < 2.5 and unready < 2.5
            await asyncio.sleep(2)
        finally:
            valkey.start()  # same port, same AOF
        for job_id in ids:
            job = await wait_state(b, job_id, {"succeeded", "failed", "cancelled"}, 120)
            assert job["state"] == "succeeded", job
        r = await a.post("/prompt", json={"prompt": invert_graph(0x102030, size=8)})
        assert r.status_code == 200


async def test_sigkilled_api_replica_sync_request_still_completes(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess,
        processes: list[WorkerProcess]) -> None:
    async with topology(valkey, [comfyui, comfyui2], apis=1) as top:
        (b,) = top.api
        replica = WorkerProcess({**worker_env(comfyui, valkey, top.prefix), "COMFYGEN_ROLE": "api"})
        processes.append(replica)
        await replica.start()
        async with httpx.AsyncClient(base_url=replica.url, timeout=60) as a:
            # A colour no other run used: ComfyUI would answer a graph it ran last (or its first
            # blurs: another test's slow_graph(blurs=3, size=256)) from its cache, in a moment,
            # and the request could end before the kill.
            color = random.randrange(0xFFFFFF)
            body = {"prompt": slow_graph(blurs=4, size=256, color=color), "id": "sync-on-a"}
            call = asyncio.create_task(a.post("/prompt", json=body,
                                              headers={"Idempotency-Key": "held-by-a"}))
            # Its own job is durable and running: its state, not "some prompt is running in a
            # ComfyUI" (a prompt another test left there let the kill come before A had even
            # created the job; B then created a new one, not a replay).
            job_id = await held_job(valkey, top.prefix, "held-by-a")
            await wait_state(b, job_id, {"running"}, 30)
            replica.kill()
            with pytest.raises(httpx.TransportError):
                await call
        # the job went on; the other replica finds it by its key and answers its result
        r = await b.post("/prompt", json=body, headers={"Idempotency-Key": "held-by-a"})
        assert r.status_code == 200, r.text
        assert r.headers["idempotent-replayed"] == "true" and r.json()["id"] == "sync-on-a"
        assert (await b.get(f"/jobs/{job_id}")).json()["state"] == "succeeded"


def legacy_events(requests: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    """The legacy webhook bodies among what a receiver got (its port may have been another
    test's, whose server still retries there)."""
    bodies = [json.loads(body) for _, body in requests]
    return [b for b in bodies if b.get("id") == "legacy-1"]


async def held_job(valkey: Valkey, prefix: str, key: str, timeout: float = 30) -> str:
    """The id of the job created with this Idempotency-Key, once it is in Redis."""
    redis = Redis.from_url(valkey.url, decode_responses=True)
    try:
        async with asyncio.timeout(timeout):
            while (job_id := await redis.get(f"{prefix}:key:{key}")) is None:
                await asyncio.sleep(0.02)
        return job_id
    finally:
        await redis.aclose()


async def test_webhook_delivery_continues_after_its_worker_died(
        valkey: Valkey, comfyui: ComfyUIProcess, processes: list[WorkerProcess]) -> None:
    from server.app import create_app
    from server.jobs.manager import webhook_id
    from tests.jobs_api.live import live
    from tests.shared_jobs.topology import shared_settings

    receiver = await Receiver().start()
    receiver.status_for = lambda body: 503  # the receiver is down at first
    try:
        async with topology(valkey, [], apis=1, api_comfyui=comfyui) as top:
            (a,) = top.api
            worker = WorkerProcess(worker_env(comfyui, valkey, top.prefix))
            processes.append(worker)
            await worker.start()
            r = await a.post("/prompt", json={"prompt": invert_graph(0x123456, size=8),
                                              "webhook_v2": receiver.url}, headers=ASYNC)
            job_id = r.json()["job_id"]
            expected = webhook_id(job_id, "prompt.complete")
            async with asyncio.timeout(30):  # the job is done and its webhook being retried
                # (only this job's attempts: a port reused from an earlier test can get others)
                while not any(h.get("webhook-id") == expected for h, _ in receiver.attempted):
                    await asyncio.sleep(0.02)
            assert (await a.get(f"/jobs/{job_id}")).json()["state"] == "succeeded"
            worker.kill()  # mid-delivery
            receiver.status_for = lambda body: 200
            settings = shared_settings(comfyui, valkey, top.prefix, "worker",
                                       job_claim_timeout=CLAIM_TIMEOUT)
            async with live(create_app(settings, {})):
                await receiver.wait_for(1, 30)
                await asyncio.sleep(1)
        ids = [h["webhook-id"] for h, body in receiver.received
               if json.loads(body).get("type", "").startswith("prompt.")]
        assert ids == [expected], ids
    finally:
        await receiver.stop()


async def test_legacy_webhook_delivery_continues_after_its_worker_died(
        valkey: Valkey, comfyui: ComfyUIProcess, processes: list[WorkerProcess]) -> None:
    """Two `output.complete` events: the first delivered, the second being retried when the
    worker dies; the worker that takes the job over sends the second (only) once."""
    from server.app import create_app
    from tests.jobs_api.live import live
    from tests.shared_jobs.topology import shared_settings

    receiver = await Receiver().start()
    receiver.status_for = lambda body: (503 if legacy_events(receiver.received)  # then down
                                        else 200)
    try:
        async with topology(valkey, [], apis=1, api_comfyui=comfyui) as top:
            (a,) = top.api
            worker = WorkerProcess(worker_env(comfyui, valkey, top.prefix))
            processes.append(worker)
            await worker.start()
            graph = invert_graph(0x123456, size=8)
            graph["1"]["inputs"]["batch_size"] = 2
            r = await a.post("/prompt", json={"prompt": graph, "id": "legacy-1",
                                              "webhook": receiver.url}, headers=ASYNC)
            job_id = r.json()["job_id"]
            async with asyncio.timeout(30):  # the first delivered, the second being retried
                while len(legacy_events(receiver.attempted)) < 2:
                    await asyncio.sleep(0.02)
            job = (await a.get(f"/jobs/{job_id}")).json()
            assert job["state"] == "succeeded" and len(job["result"]["images"]) == 2
            worker.kill()  # mid-delivery
            receiver.status_for = lambda body: 200
            settings = shared_settings(comfyui, valkey, top.prefix, "worker",
                                       job_claim_timeout=CLAIM_TIMEOUT)
            async with live(create_app(settings, {})):
                async with asyncio.timeout(30):
                    while len(legacy_events(receiver.received)) < 2:
                        await asyncio.sleep(0.02)
                await asyncio.sleep(1)  # nothing more comes
        events = legacy_events(receiver.received)
        assert [e["event"] for e in events] == ["output.complete", "output.complete"]
        assert [e["filename"] for e in events] == job["result"]["filenames"]
        assert [e["image"] for e in events] == job["result"]["images"]
        assert {e["id"] for e in events} == {"legacy-1"}
    finally:
        await receiver.stop()
