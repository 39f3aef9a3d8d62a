"""Settings from the environment: production refuses to start without its variables or
with a weak signing secret (naming the variable, never a value), CORS is an allow-list in development and
same-origin in production, DJANGO_ALLOWED_HOSTS and DATABASE_URL are honoured, and the
voice timing settings refuse values the session cannot work with.

Production settings are evaluated in a subprocess with a controlled environment,
so this test process's settings module is never touched.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from devtools.stack import LIVEKIT_DEV_SECRET
from tests.unit.support import PRODUCTION, ROOT, load_settings

FLASK_ORIGIN = "http://127.0.0.1:5000"

REQUIRED_IN_PRODUCTION = [
    "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "LIVEKIT_URL", "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET", "OPENAI_API_KEY",
]
PROBE = (
    "import json, app.settings as s; print(json.dumps({k: getattr(s, k) for k in "
    "('DEBUG', 'ALLOWED_HOSTS', 'CORS_ALLOWED_ORIGINS', 'DATABASES', 'CHANNEL_LAYERS', "
    "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE') if hasattr(s, k)}, default=str))"
)


def settings_of(env: dict[str, str], probe: str = PROBE) -> dict:
    result = load_settings(env, probe)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_is_locked_down_and_reads_everything_from_the_environment() -> None:
    prod = settings_of(PRODUCTION)
    assert prod["DEBUG"] is False
    assert prod["ALLOWED_HOSTS"] == ["voice.example.com", "api.voice.example.com"]
    assert prod["CORS_ALLOWED_ORIGINS"] == []  # same-origin only, whatever CORS_ORIGINS says
    assert prod["SECURE_SSL_REDIRECT"] and prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"]
    db = prod["DATABASES"]["default"]
    assert (db["ENGINE"], db["NAME"], db["HOST"], db["PORT"], db["USER"]) == (
        "django.db.backends.postgresql", "voice", "db.internal", 5432, "voice"
    )
    assert prod["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"


@pytest.mark.parametrize("missing", REQUIRED_IN_PRODUCTION)
def test_production_refuses_to_start_naming_the_missing_variable_and_no_value(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = load_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.splitlines()[-1]
    for name, value in PRODUCTION.items():
        if name not in ("DJANGO_ENV", "DJANGO_ALLOWED_HOSTS", "CORS_ORIGINS"):
            assert value not in result.stderr, f"{name}'s value leaked"


# Each: a signing secret production must refuse. A token /token returned, or a visitor
# cookie, is enough to try a word list against its HMAC key offline.
SIGNING_SECRETS = ["DJANGO_SECRET_KEY", "LIVEKIT_API_SECRET"]
WEAK_SECRETS = [
    pytest.param("Wk7-q", id="too-short"),
    pytest.param("Wk7-q" * 6 + "Z", id="31-characters"),
    pytest.param("dev-only-insecure-key", id="django-default"),
    pytest.param("secret", id="livekit-default-and-dev-server"),
    pytest.param(LIVEKIT_DEV_SECRET, id="devtools-stack"),
    pytest.param("django-insecure-" + "Wk7-q" * 10, id="django-startproject"),
]
SETTINGS_SOURCE = (ROOT / "app" / "settings.py").read_text()


@pytest.mark.parametrize("value", WEAK_SECRETS)
@pytest.mark.parametrize("variable", SIGNING_SECRETS)
def test_production_refuses_a_short_or_development_secret_naming_the_variable_and_the_rule(
    variable: str, value: str
) -> None:
    result = load_settings({**PRODUCTION, variable: value})
    assert result.returncode != 0
    error = result.stderr.splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr
    assert variable in error and "at least 32 characters" in error and "development value" in error
    assert value not in error.partition(": ")[2]
    # A development default shows in the traceback's own source lines; nothing else may.
    if value not in SETTINGS_SOURCE:
        assert value not in result.stderr


def test_production_accepts_a_32_character_secret() -> None:
    secrets = {name: "Wk7-q" * 6 + "Zz" for name in SIGNING_SECRETS}
    assert settings_of({**PRODUCTION, **secrets})["DEBUG"] is False


def test_production_with_fake_providers_needs_no_openai_key() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "OPENAI_API_KEY"}
    assert settings_of({**env, "VOICE_PROVIDERS": "fake"})["DEBUG"] is False


def test_production_on_another_openai_compatible_server_needs_no_key_unless_a_service_goes_to_openai() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "OPENAI_API_KEY"}
    assert settings_of({**env, "OPENAI_BASE_URL": "http://speech.internal:8090/v1"})["DEBUG"] is False
    # Chat elsewhere, but speech still to OpenAI: the key is needed, and the error says why.
    result = load_settings({**env, "OPENAI_LLM_BASE_URL": "http://ollama.internal:11434/v1"})
    assert result.returncode != 0
    assert "OPENAI_API_KEY" in result.stderr and "OPENAI_STT_BASE_URL" in result.stderr


def test_development_defaults_allow_the_flask_origin_and_sqlite() -> None:
    dev = settings_of({"DJANGO_ENV": "development"})
    assert FLASK_ORIGIN in dev["CORS_ALLOWED_ORIGINS"]
    assert dev["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert dev["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    custom = settings_of(
        {"DJANGO_ENV": "development", "CORS_ORIGINS": "http://ui.local:8080, http://x.local",
         "DJANGO_ALLOWED_HOSTS": "api.local"}
    )
    assert custom["CORS_ALLOWED_ORIGINS"] == ["http://ui.local:8080", "http://x.local"]
    assert custom["ALLOWED_HOSTS"] == ["api.local"]


# Each: an environment that must not start, and the variable the error must name.
INVALID_VOICE_SETTINGS = [
    ({"VOICE_ENDPOINTING_DELAY": "soon"}, "VOICE_ENDPOINTING_DELAY"),
    ({"VOICE_ENDPOINTING_DELAY": "-0.1"}, "VOICE_ENDPOINTING_DELAY"),
    ({"VOICE_VAD_MIN_SILENCE": "0.05"}, "VOICE_VAD_MIN_SILENCE"),
    ({"VOICE_WORKER_JOB_EXECUTOR": "fork"}, "VOICE_WORKER_JOB_EXECUTOR"),
]
VOICE_PROBE = (
    "import json, app.settings as s; print(json.dumps({k: getattr(s, k) for k in "
    "('VOICE_ENDPOINTING_DELAY', 'VOICE_VAD_MIN_SILENCE', 'VOICE_WORKER_JOB_EXECUTOR')}, default=str))"
)


@pytest.mark.parametrize(("env", "variable"), INVALID_VOICE_SETTINGS)
def test_a_voice_setting_the_session_cannot_use_is_refused_by_name(env: dict[str, str], variable: str) -> None:
    result = load_settings({"DJANGO_ENV": "development", **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_voice_settings_are_read_as_given() -> None:
    # The measured defaults (bench/README.md, "End of turn"); threads are opt-in (README).
    assert settings_of({"DJANGO_ENV": "development"}, VOICE_PROBE) == {
        "VOICE_ENDPOINTING_DELAY": 0.5,
        "VOICE_VAD_MIN_SILENCE": 0.7,
        "VOICE_WORKER_JOB_EXECUTOR": "process",
    }
    given = {"VOICE_ENDPOINTING_DELAY": "0.3", "VOICE_VAD_MIN_SILENCE": "0.2", "VOICE_WORKER_JOB_EXECUTOR": "thread"}
    assert settings_of({"DJANGO_ENV": "development", **given}, VOICE_PROBE) == {
        "VOICE_ENDPOINTING_DELAY": 0.3,
        "VOICE_VAD_MIN_SILENCE": 0.2,
        "VOICE_WORKER_JOB_EXECUTOR": "thread",
    }


def test_a_bad_environment_name_is_refused() -> None:
    result = load_settings({"DJANGO_ENV": "staging"})
    assert result.returncode != 0 and "DJANGO_ENV" in result.stderr


# CORS in the running (development) app: the Flask origin gets the headers, others do not.
@pytest.mark.django_db
def test_cors_allows_the_flask_origin_including_preflight(client: APIClient) -> None:
    response = client.get("/healthz", HTTP_ORIGIN=FLASK_ORIGIN)
    assert response["Access-Control-Allow-Origin"] == FLASK_ORIGIN
    preflight = client.options(
        "/session",
        HTTP_ORIGIN=FLASK_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == FLASK_ORIGIN
    assert {"POST", "DELETE"} <= {m.strip() for m in preflight["Access-Control-Allow-Methods"].split(",")}
    assert "content-type" in preflight["Access-Control-Allow-Headers"]


@pytest.mark.django_db
def test_cors_gives_nothing_to_other_origins_and_to_everyone_when_locked_down(
    client: APIClient, settings
) -> None:
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", HTTP_ORIGIN="http://evil.example")
    settings.CORS_ALLOWED_ORIGINS = []  # what production sets
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", HTTP_ORIGIN=FLASK_ORIGIN)


def test_a_postgres_database_url_selects_postgresql_and_voice_database_url_wins() -> None:
    url = "postgres://voice@127.0.0.1:5433/voice"
    db = settings_of({"DJANGO_ENV": "development", "DATABASE_URL": url})["DATABASES"]["default"]
    assert (db["ENGINE"], db["NAME"], db["PORT"]) == ("django.db.backends.postgresql", "voice", 5433)
    both = {"DJANGO_ENV": "development", "DATABASE_URL": "sqlite:////tmp/other.sqlite3", "VOICE_DATABASE_URL": url}
    assert settings_of(both)["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
