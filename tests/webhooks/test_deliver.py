"""Delivering webhooks to real loopback receivers: retries, give-ups, the guard, no secret leaks."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import pytest
from standardwebhooks import Webhook

from server.security import StaticResolver, UrlGuard, UrlPolicy
from server.webhooks import RetryPolicy, WebhookDeliverer

from ..security.loopback import LoopbackServer, Reply, Seen, free_port

SECRET = "whsec_" + base64.b64encode(b"receiver-shared-secret-0123").decode()
LOOPBACK = UrlPolicy(allow_cidrs=("127.0.0.0/8",))
FAST = RetryPolicy(initial_delay=0.05, multiplier=2, max_delay=0.4, jitter=0.2, max_attempts=12)


def deliverer(
    policy: UrlPolicy = LOOPBACK, retry: RetryPolicy = FAST, **kw: object
) -> WebhookDeliverer:
    guard = UrlGuard(
        policy, resolver=StaticResolver({"hooks.test": "127.0.0.1", "internal.test": "10.0.0.7"})
    )
    return WebhookDeliverer(guard, retry, **kw)  # type: ignore[arg-type]


class FakeTime:
    """A clock and sleep that advance instantly, recording the delays asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds


def verified(seen: Seen) -> dict:
    return Webhook(SECRET).verify(seen.body, seen.headers)


async def test_receiver_down_then_back_gets_the_message() -> None:
    """Connection refused for a while, then 503, then 200: delivered, same id, valid signature."""
    port = free_port()
    receiver = LoopbackServer(port=port)
    answers = iter([Reply(503, headers={"Retry-After": "0"})])
    receiver.route("/hook", lambda seen: next(answers, Reply(204)))
    loop = asyncio.get_running_loop()
    loop.call_later(0.6, receiver.start)
    started = time.monotonic()
    try:
        result = await deliverer().send(
            f"http://hooks.test:{port}/hook", "prompt.complete", {"id": "r1", "images": []}, SECRET
        )
    finally:
        receiver.stop()
    assert result.delivered and result.status == 204 and result.attempts >= 3
    assert time.monotonic() - started >= 0.6
    assert len(receiver.requests) == 2
    ids = {seen.headers["webhook-id"] for seen in receiver.requests}
    assert ids == {result.message_id}
    for seen in receiver.requests:
        payload = verified(seen)
        assert payload["type"] == "prompt.complete" and payload["data"]["id"] == "r1"
        assert seen.headers["host"] == f"hooks.test:{port}"
        assert seen.headers["content-type"] == "application/json"


async def test_client_errors_are_not_retried(server: LoopbackServer) -> None:
    server.route("/hook", Reply(400, b"bad"))
    result = await deliverer().send(server.url("/hook"), "prompt.failed", {"id": "r"}, SECRET)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 400)
    assert "HTTP 400" in (result.error or "")


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_retryable_statuses_until_max_attempts(server: LoopbackServer, status: int) -> None:
    server.route("/hook", Reply(status))
    retry = RetryPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=4)
    result = await deliverer(retry=retry).send(server.url("/hook"), "prompt.failed", {}, SECRET)
    assert (result.delivered, result.attempts, result.status) == (False, 4, status)
    assert len(server.requests) == 4


async def test_redirects_are_not_followed(server: LoopbackServer) -> None:
    server.route("/hook", Reply(307, headers={"Location": "/elsewhere"}))
    result = await deliverer().send(server.url("/hook"), "prompt.failed", {}, SECRET)
    assert (result.delivered, result.attempts) == (False, 1)
    assert [s.path for s in server.requests] == ["/hook"]


async def test_retry_after_is_honoured(server: LoopbackServer) -> None:
    fake = FakeTime()
    answers = iter([Reply(429, headers={"Retry-After": "7"})])
    server.route("/hook", lambda seen: next(answers, Reply(200)))
    d = deliverer(sleep=fake.sleep, clock=fake.clock)
    result = await d.send(server.url("/hook"), "prompt.complete", {}, SECRET)
    assert result.delivered and fake.delays == [7.0]


async def test_backoff_grows_with_bounded_jitter() -> None:
    retry = RetryPolicy(initial_delay=1, multiplier=2, max_delay=10, jitter=0.5)
    low = deliverer(retry=retry, rand=lambda: 0.0)
    high = deliverer(retry=retry, rand=lambda: 1.0)
    mid = deliverer(retry=retry, rand=lambda: 0.5)
    assert [mid.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert [low.backoff(n) for n in (1, 3)] == [0.5, 2]
    assert [high.backoff(n) for n in (1, 3)] == [1.5, 6]


async def test_total_time_limit() -> None:
    fake = FakeTime()
    retry = RetryPolicy(
        initial_delay=10, multiplier=2, jitter=0, max_total=100, max_attempts=50, max_delay=1000
    )
    d = deliverer(retry=retry, sleep=fake.sleep, clock=fake.clock)
    result = await d.send(f"http://127.0.0.1:{free_port()}/hook", "prompt.failed", {}, SECRET)
    assert not result.delivered
    assert fake.delays == [10, 20, 40]  # the next (80 s) would end after 100 s
    assert result.attempts == 4 and "gave up" in (result.error or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest",
        "http://internal.test/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "file:///etc/passwd",
    ],
)
async def test_guard_refuses_private_webhook_urls(url: str, no_connections: list[str]) -> None:
    result = await deliverer(UrlPolicy()).send(url, "prompt.complete", {}, SECRET)
    assert (result.delivered, result.attempts, result.status) == (False, 0, None)
    assert no_connections == []


async def test_loopback_receiver_refused_unless_allow_listed(server: LoopbackServer) -> None:
    server.route("/hook", Reply(200))
    result = await deliverer(UrlPolicy()).send(server.url("/hook"), "prompt.complete", {}, SECRET)
    assert not result.delivered and "not allowed" in (result.error or "")
    assert server.requests == []


async def test_no_secret_in_logs_results_or_errors(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/hook", Reply(500))
    retry = RetryPolicy(initial_delay=0, max_attempts=2)
    url = server.url("/hook") + "?token=query-secret"
    result = await deliverer(retry=retry).send(url, "prompt.failed", {}, SECRET)
    key_b64 = SECRET.removeprefix("whsec_")
    for text in (repr(result), str(result.error), caplog.text):
        assert key_b64 not in text and "query-secret" not in text
    assert result.url == server.url("/hook")


async def test_bad_secret_is_reported_not_raised(server: LoopbackServer) -> None:
    result = await deliverer().send(server.url("/hook"), "prompt.failed", {}, "whsec_!!not-b64")
    assert (result.delivered, result.attempts) == (False, 0)
    assert "not base64" in (result.error or "") and "!!not-b64" not in (result.error or "")
    assert server.requests == []
