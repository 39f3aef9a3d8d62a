"""Rate limits on GET /token and POST /session: per client IP, one budget per endpoint,
rates from settings, 429 `rate_limited` with Retry-After, counters in Django's cache
(shared through Redis between processes), X-Forwarded-For only behind trusted proxies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from app.voice.http.throttling import TokenRateThrottle
from tests.unit.support import JSON, PRODUCTION, ROOT, assert_error, load_settings, real_backend

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def small_budgets(settings) -> Iterator[None]:
    settings.VOICE_TOKEN_RATE = "3/min"
    settings.VOICE_SESSION_RATE = "2/min"
    cache.clear()
    yield
    cache.clear()


def token(client: APIClient, n: int, **extra: str):
    return client.get("/token", {"room": f"room-{n}", "identity": "alice"}, **extra)


def bad_session(client: APIClient, **extra: str):
    """A POST /session that counts against the budget but starts nothing (400)."""
    return client.post("/session", "{}", content_type=JSON, **extra)


def test_token_budget_per_ip_then_429_rate_limited_with_retry_after(client: APIClient) -> None:
    assert [token(client, n).status_code for n in range(3)] == [200, 200, 200]
    refused = token(client, 3)
    error = assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert f"{refused['Retry-After']} second" in error["message"]
    # Another client address has its own budget.
    assert token(client, 4, REMOTE_ADDR="10.0.0.2").status_code == 200


def test_token_and_session_budgets_are_separate_scopes(client: APIClient) -> None:
    for n in range(3):
        assert token(client, n).status_code == 200
    assert_error(token(client, 9), 429, "rate_limited")
    # /session still has its own budget (2/min): the bad bodies are judged, then refused.
    assert [bad_session(client).status_code for _ in range(2)] == [400, 400]
    refused = bad_session(client)
    assert_error(refused, 429, "rate_limited")
    assert refused["Retry-After"].isdigit()


def test_the_budget_refills_when_the_window_passes(client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock:  # DRF's throttles read time through their `timer` attribute
        now = 1_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(TokenRateThrottle, "timer", clock)
    for n in range(3):
        assert token(client, n).status_code == 200
    assert token(client, 3)["Retry-After"] == "60"
    clock.now += 30
    assert token(client, 3).status_code == 429
    clock.now += 31
    assert token(client, 3).status_code == 200


def test_rates_come_from_settings_and_off_means_unlimited(client: APIClient, settings) -> None:
    settings.VOICE_TOKEN_RATE = None
    assert all(token(client, n).status_code == 200 for n in range(10))
    settings.VOICE_TOKEN_RATE = "1/hour"
    cache.clear()
    assert token(client, 0).status_code == 200
    refused = token(client, 1)
    assert_error(refused, 429, "rate_limited")
    assert 3500 < int(refused["Retry-After"]) <= 3600


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client: APIClient) -> None:
    for n in range(3):  # a client forging a new X-Forwarded-For each time gains nothing
        assert token(client, n, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 200
    assert_error(token(client, 3, HTTP_X_FORWARDED_FOR="203.0.113.99"), 429, "rate_limited")


def test_behind_one_trusted_proxy_the_client_is_the_address_it_appended(client: APIClient, settings) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # REMOTE_ADDR 127.0.0.1 (the test client's): the proxy
    for n in range(3):  # the forged left-hand entries differ; the proxy's entry does not
        assert token(client, n, HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 198.51.100.7").status_code == 200
    assert_error(token(client, 3, HTTP_X_FORWARDED_FOR="198.51.100.7"), 429, "rate_limited")
    assert token(client, 4, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200  # another visitor
    # A malformed entry is not an address: the request counts against the proxy's own IP.
    assert token(client, 5, HTTP_X_FORWARDED_FOR="not an ip").status_code == 200


def test_the_real_server_lets_no_forged_x_forwarded_for_pick_the_client(tmp_path: Path) -> None:
    """The backend as the stack starts it: uvicorn must not rewrite the client address from
    X-Forwarded-For (its default for requests from 127.0.0.1), or every forged header is a
    new budget. Only the app decides (client_ip), and without trusted proxies it is the peer."""
    with real_backend(tmp_path, VOICE_TOKEN_RATE="2/min") as url:
        answers = [
            httpx.get(f"{url}/token", params={"room": f"room-{n}", "identity": f"guest-{n}"},
                      headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=30)
            for n in range(3)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 429], [a.text for a in answers]
    assert answers[2].json()["error"]["code"] == "rate_limited"


NO_SESSION = "/session/00000000-0000-4000-8000-000000000000"
# Every other endpoint, and what it answers here: none of them may ever say 429.
UNTHROTTLED = [
    ("get", NO_SESSION, 404),
    ("delete", NO_SESSION, 404),  # the Stop button and page-leave cleanup must always get through
    ("get", "/transcripts", 200),
    ("get", "/transcripts/00000000-0000-4000-8000-000000000000", 404),
    ("get", "/healthz", 200),
    ("get", "/readyz", 200),
    ("get", "/openapi.json", 200),
]


def test_only_token_and_session_creation_are_throttled(client: APIClient, settings) -> None:
    settings.VOICE_TOKEN_RATE = "1/min"
    settings.VOICE_SESSION_RATE = "1/min"
    assert token(client, 0).status_code == 200
    assert_error(token(client, 1), 429, "rate_limited")
    assert bad_session(client).status_code == 400
    assert_error(bad_session(client), 429, "rate_limited")
    # Both budgets are spent; every other endpoint still answers, however often it is asked.
    for method, path, status in UNTHROTTLED:
        answers = [getattr(client, method)(path).status_code for _ in range(3)]
        assert answers == [status] * 3, (method, path, answers)


def test_schema_declares_429_and_403_for_token_and_session(client: APIClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"403", "409", "429"} <= set(paths["/token"]["get"]["responses"])
    assert {"403", "409", "429"} <= set(paths["/session"]["post"]["responses"])


def test_production_defaults_and_cache_settings() -> None:
    probe = (
        "import json, app.settings as s; print(json.dumps([s.VOICE_TOKEN_RATE, s.VOICE_SESSION_RATE, "
        "s.VOICE_MAX_SESSIONS_PER_IDENTITY, s.VOICE_MAX_SESSIONS_PER_IP, s.REST_FRAMEWORK['NUM_PROXIES'], "
        "s.CACHES['default']['BACKEND'], s.CACHES['default'].get('LOCATION')]))"
    )

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return load_settings(env, probe)

    prod = json.loads(run(PRODUCTION).stdout)
    assert prod == ["60/min", "20/min", 2, 10, 0, "django.core.cache.backends.redis.RedisCache",
                    PRODUCTION["REDIS_URL"]]
    dev = json.loads(run({}).stdout)
    assert dev[:5] == [None, None, 2, 10, 0]
    assert dev[5] == "django.core.cache.backends.locmem.LocMemCache"
    tuned = json.loads(run({**PRODUCTION, "VOICE_TOKEN_RATE": "5/s", "VOICE_SESSION_RATE": "off",
                            "VOICE_TRUSTED_PROXIES": "1"}).stdout)
    assert tuned[:5] == ["5/s", None, 2, 10, 1]
    for bad in ("lots", "10", "10/week", "-1/min", "1.5/min"):
        result = run({**PRODUCTION, "VOICE_SESSION_RATE": bad})
        assert result.returncode != 0 and "VOICE_SESSION_RATE must look like" in result.stderr
    refused = load_settings({"VOICE_MAX_SESSIONS_PER_IP": "0"})
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[-1].endswith("VOICE_MAX_SESSIONS_PER_IP must be between 1 and 100000")


# --- shared across processes: the counters live in Redis when REDIS_URL is set ----------


CHILD = """
import django
django.setup()
from django.test import RequestFactory
from rest_framework.request import Request
from app.voice.http.throttling import TokenRateThrottle
for address in ("127.0.0.1", "10.9.9.9"):
    request = Request(RequestFactory().get("/token", REMOTE_ADDR=address))
    print(address, TokenRateThrottle().allow_request(request, None))
"""


def test_another_process_sharing_redis_sees_the_same_budget(
    client: APIClient, settings, redis_url: str
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "voice",
        }
    }
    try:
        for n in range(3):
            assert token(client, n).status_code == 200
        assert_error(token(client, 3), 429, "rate_limited")
        child = run_child(redis_url)
    finally:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["127.0.0.1", "False", "10.9.9.9", "True"]


def run_child(redis_url: str) -> subprocess.CompletedProcess[str]:
    # A second web process configured like production (same REDIS_URL), no shared memory.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "app.settings", "VOICE_TOKEN_RATE": "3/min"}
    return subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
