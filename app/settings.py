"""Django settings, read from the environment once at start-up.

Defaults run the whole stack locally against `livekit-server --dev` (the run command adds
the offline OpenAI-compatible server when there is no key); production
(`DJANGO_ENV=production`) refuses to start without the variables it needs, or with a short
or development secret, and names the variable (never its value).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = os.environ.get("DJANGO_ENV", "development").strip().lower()
PRODUCTION = ENVIRONMENT == "production"
if ENVIRONMENT not in {"development", "production", "test"}:
    raise ImproperlyConfigured("DJANGO_ENV must be one of development, production, test")


def _env(name: str, default: str | None = None, *, required_in_production: bool = False) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if PRODUCTION and required_in_production:
        raise ImproperlyConfigured(f"{name} must be set when DJANGO_ENV=production")
    return default or ""


# Development values of the signing secrets: this file's defaults, devtools/stack.py's
# LIVEKIT_DEV_SECRET and `livekit-server --dev`'s ("secret"); Django's startproject keys begin
# "django-insecure-". Whoever knows the secret forges visitor cookies or LiveKit tokens (any
# room, any identity), and a short one falls to a word list from one token /token returned.
_DEV_SECRETS = {"dev-only-insecure-key", "secret"}


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _env_secret(name: str, default: str) -> str:
    value = _env(name, default, required_in_production=True)
    if PRODUCTION and (len(value) < 32 or value in _DEV_SECRETS or value.startswith("django-insecure-")):
        raise ImproperlyConfigured(  # the rule, never the value
            f"{name} must be at least 32 characters and not a development value when DJANGO_ENV=production"
        )
    return value


def _env_list(name: str, default: str = "", **kw: bool) -> list[str]:
    return [item.strip() for item in _env(name, default, **kw).split(",") if item.strip()]


Number = TypeVar("Number", int, float)


def _env_number(name: str, default: Number, kind: type[Number], minimum: Number, maximum: Number) -> Number:
    try:
        value = kind(_env(name, str(default)))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {'an integer' if kind is int else 'a number'}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}")
    return value


def _env_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    return _env_number(name, default, int, minimum, maximum)


def _env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    return _env_number(name, default, float, minimum, maximum)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0")
    if raw not in {"0", "1"}:
        raise ImproperlyConfigured(f"{name} must be 0 or 1")
    return raw == "1"


DEBUG = not PRODUCTION and _env("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = _env_secret("DJANGO_SECRET_KEY", "dev-only-insecure-key")
ALLOWED_HOSTS = _env_list(
    "DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver", required_in_production=True
)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",  # where a deployment signs people in, the user is the visitor
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "app.voice",
]

MIDDLEWARE = [
    "app.voice.http.errors.AllowedHostsMiddleware",  # first: a bad Host is a JSON 400, even with DEBUG on
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "app.voice.http.visitors.VisitorMiddleware",
]

# Who is asking (app.voice.sessions.visitors): each visitor gets a signed, HttpOnly session
# cookie from the first API answer it reaches without one. The cookie holds only a random
# visitor key, signed with SECRET_KEY (no server-side session table). SameSite=Lax: sent by
# the pages' own fetches and WebSocket (same site: cookies are per host, not per port), not
# by other sites' forms or scripts. Secure whenever DEBUG is off.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "voice_visitor"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
# A visitor's history is theirs as long as the cookie lives: a year from their first visit.
SESSION_COOKIE_AGE = 365 * 24 * 3600

ROOT_URLCONF = "app.urls"
ASGI_APPLICATION = "app.asgi.application"
APPEND_SLASH = False
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The database: VOICE_DATABASE_URL or DATABASE_URL, e.g. postgres://user:pass@host:5432/voice
# (PostgreSQL, what production runs: psycopg 3); SQLite in var/ when neither is set (development).
DATABASE_URL = _env("VOICE_DATABASE_URL", _env("DATABASE_URL"))
if not DATABASE_URL:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'voice.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads write at once (requests, in-process agents). A transaction takes the
    # write lock as it begins, waiting for it up to 20 s, instead of failing ("database is
    # locked") when two transactions that have both read try to write.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}

# Channel layer: in-memory for one process, Redis when several workers share sessions.
REDIS_URL = _env("REDIS_URL", _env("CHANNEL_LAYERS"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Shared cache: DRF's throttle counters live here, so every web process must see the same
# one in production: Redis when REDIS_URL is set, this process's memory otherwise.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "voice",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# CORS: the Flask origin in development, same-origin only in production.
CORS_ALLOWED_ORIGINS = (
    []
    if PRODUCTION
    else _env_list("CORS_ORIGINS", "http://127.0.0.1:5000,http://localhost:5000")
)
CORS_ALLOW_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
# The pages' fetches carry the visitor cookie (credentials: "include"): allowed for the
# origins listed above only, never for "*".
CORS_ALLOW_CREDENTIALS = True
# A 429's Retry-After tells the page how long to wait; cross-origin it must be exposed.
CORS_EXPOSE_HEADERS = ["Retry-After"]

REST_FRAMEWORK: dict[str, Any] = {
    # The API is anonymous: no session auth, so no CSRF token dance for the browser flow.
    # (Who is asking is the visitor, app.voice.http.visitors, not DRF's authentication.)
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["app.voice.http.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "app.voice.http.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}



def _env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate, "N/s|min|hour|day"; "off" disables that limit."""
    raw = _env(name, default).lower()
    if raw in {"off", "none", "0"}:
        return None
    count, _, period = raw.partition("/")
    if not (count.isdigit() and int(count) > 0 and period[:1] in {"s", "m", "h", "d"}):
        raise ImproperlyConfigured(f'{name} must look like "20/min" (per s, min, hour or day) or "off"')
    return raw


# Abuse limits (README "Security"). Per client IP: requests per window to GET /token and
# POST /session. On by default in production; off by default elsewhere (one developer on
# 127.0.0.1, and test suites that send hundreds of requests from it), settable everywhere.
VOICE_TOKEN_RATE = _env_rate("VOICE_TOKEN_RATE", "60/min" if PRODUCTION else "off")
VOICE_SESSION_RATE = _env_rate("VOICE_SESSION_RATE", "20/min" if PRODUCTION else "off")
# Live (created or running) sessions one identity, or one client IP, may hold at once.
VOICE_MAX_SESSIONS_PER_IDENTITY = _env_int("VOICE_MAX_SESSIONS_PER_IDENTITY", 2, minimum=1, maximum=1000)
VOICE_MAX_SESSIONS_PER_IP = _env_int("VOICE_MAX_SESSIONS_PER_IP", 10, minimum=1, maximum=100000)
# Lines typed to the agent (LiveKit text input), per session: each is an LLM request. At
# most this many a minute, after a burst; longer than contract.rules.TYPED_MAX_CHARS is
# refused too (app.voice.agent.typed_input).
VOICE_TYPED_PER_MINUTE = _env_int("VOICE_TYPED_PER_MINUTE", 20, minimum=1, maximum=6000)
VOICE_TYPED_BURST = _env_int("VOICE_TYPED_BURST", 3, minimum=1, maximum=1000)
# An identity belongs to its visitor until it goes this many days unused (no token, no session).
VOICE_IDENTITY_HOLD_DAYS = _env_int("VOICE_IDENTITY_HOLD_DAYS", 30, minimum=1, maximum=3650)
# How many reverse proxies in front of Django append to X-Forwarded-For. 0 (the default):
# the client IP is REMOTE_ADDR and X-Forwarded-For is ignored, since any client can forge it.
REST_FRAMEWORK["NUM_PROXIES"] = _env_int("VOICE_TRUSTED_PROXIES", 0, minimum=0, maximum=10)
# The transcript socket (app.voice.ws.limits; close codes in app.voice.contract.close_codes).
# Clients only ever send a small {"type": "ping"}: a larger frame, a binary frame, or more
# than RATE frames a second beyond a BURST closes the socket. Sockets open at once are
# bounded per session and per web process. uvicorn's --ws-max-size (64 KiB in
# devtools/stack.py and docs/production.md) must not be below VOICE_WS_MAX_FRAME_BYTES.
VOICE_WS_MAX_FRAME_BYTES = _env_int("VOICE_WS_MAX_FRAME_BYTES", 4096, minimum=64, maximum=65536)
VOICE_WS_FRAME_RATE = _env_float("VOICE_WS_FRAME_RATE", 5.0, minimum=0.1, maximum=1000.0)
VOICE_WS_FRAME_BURST = _env_int("VOICE_WS_FRAME_BURST", 20, minimum=1, maximum=10000)
VOICE_WS_MAX_SOCKETS_PER_SESSION = _env_int("VOICE_WS_MAX_SOCKETS_PER_SESSION", 8, minimum=1, maximum=1000)
VOICE_WS_MAX_SOCKETS = _env_int("VOICE_WS_MAX_SOCKETS", 2000, minimum=1, maximum=1_000_000)

# OpenAPI schema of the HTTP API, served at /openapi.json (app/voice/http/api_schema.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "Voice Agent API",
    "DESCRIPTION": "Token minting, agent sessions and transcript history. Errors are "
    '`{"error": {"code", "message"}}`. The transcript stream is WS /ws/transcript/{session_id}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "app.voice.models.SessionStatus",
        "HealthStatusEnum": "app.voice.contract.rules.HealthStatus",
    },
}

# LiveKit: the server the agent reaches, and the URL the browser must use.
LIVEKIT_URL = _env("LIVEKIT_URL", "ws://127.0.0.1:7880", required_in_production=True)
LIVEKIT_PUBLIC_URL = _env("LIVEKIT_PUBLIC_URL", LIVEKIT_URL)
LIVEKIT_API_KEY = _env("LIVEKIT_API_KEY", "devkey", required_in_production=True)
LIVEKIT_API_SECRET = _env_secret("LIVEKIT_API_SECRET", "secret")
# A token is only needed to join: once in, LiveKit refreshes the client's token itself, so
# it can be short. It also bounds how long an unused claim holds a room name.
LIVEKIT_TOKEN_TTL_SECONDS = _env_int("LIVEKIT_TOKEN_TTL_SECONDS", 120, minimum=60, maximum=86400)

# Voice pipeline. The provider set (app.voice.agent.providers): "openai", the product,
# everywhere it runs; "fake" (scripted, in-process) for tests and benchmarks.
OPENAI_API_KEY = _env("OPENAI_API_KEY")
# Where the openai set sends its requests: OpenAI when empty, or any server that speaks its
# protocol. Without a key, `./dev.sh run` and the tests start the offline one
# (offline_openai: Whisper, Piper, rule-based replies) and set this to it. Each service may
# go elsewhere (e.g. chat to Ollama: OPENAI_LLM_BASE_URL=http://127.0.0.1:11434/v1 and
# OPENAI_LLM_MODEL=llama3.2).
OPENAI_BASE_URL = _env("OPENAI_BASE_URL")
OPENAI_STT_BASE_URL = _env("OPENAI_STT_BASE_URL", OPENAI_BASE_URL)
OPENAI_LLM_BASE_URL = _env("OPENAI_LLM_BASE_URL", OPENAI_BASE_URL)
OPENAI_TTS_BASE_URL = _env("OPENAI_TTS_BASE_URL", OPENAI_BASE_URL)
OPENAI_LLM_MODEL = _env("OPENAI_LLM_MODEL", "gpt-4o-mini")
VOICE_PROVIDERS = _env_choice("VOICE_PROVIDERS", "openai", ("openai", "fake"))
_openai_without_key = [
    name for name, url in (("OPENAI_STT_BASE_URL", OPENAI_STT_BASE_URL), ("OPENAI_LLM_BASE_URL", OPENAI_LLM_BASE_URL),
                           ("OPENAI_TTS_BASE_URL", OPENAI_TTS_BASE_URL)) if not url
]
if PRODUCTION and VOICE_PROVIDERS == "openai" and not OPENAI_API_KEY and _openai_without_key:
    raise ImproperlyConfigured(
        "OPENAI_API_KEY must be set when VOICE_PROVIDERS=openai and a service goes to OpenAI "
        f"({', '.join(_openai_without_key)} empty)"
    )
SYSTEM_PROMPT = _env(
    "SYSTEM_PROMPT",
    "You are a friendly, concise voice assistant. Answer in one or two short spoken "
    "sentences, without lists or markdown.",
)
# When the person's turn ends (bench/README.md, "End of turn", has the measurements): once
# Silero has heard VOICE_VAD_MIN_SILENCE of silence and VOICE_ENDPOINTING_DELAY has passed
# since the speech. An end-of-turn model (smart-turn v3.2) was measured and lost to this.
VOICE_ENDPOINTING_DELAY = _env_float("VOICE_ENDPOINTING_DELAY", 0.5, minimum=0.0, maximum=5.0)
# Silence Silero needs before it calls the speech over; no turn ends sooner. The default is
# the shortest window that cuts off no more than 5 % of sentences at their natural pauses
# (bench/README.md, "End of turn").
VOICE_VAD_MIN_SILENCE = _env_float("VOICE_VAD_MIN_SILENCE", 0.7, minimum=0.1, maximum=3.0)
# The reply's text is started on the final transcript, before the turn is sure to be over
# (the library's preemptive generation). 1 starts its speech too: that is a paid TTS call
# thrown away whenever the person goes on, for a few milliseconds (bench/README.md).
VOICE_PREEMPTIVE_TTS = _env_bool("VOICE_PREEMPTIVE_TTS", False)
# How long the agent waits for the person to (re)join before ending a session.
VOICE_PARTICIPANT_TIMEOUT = _env_float(
    "VOICE_PARTICIPANT_TIMEOUT", 30.0, minimum=1.0, maximum=600.0
)

# Where agents run: "inprocess" (inside this ASGI process; one machine) or "dispatch"
# (LiveKit dispatches each session to a `python -m app.voice.agent.worker start` worker).
VOICE_AGENT_HOST = _env_choice("VOICE_AGENT_HOST", "inprocess", ("inprocess", "dispatch"))
VOICE_AGENT_NAME = _env("VOICE_AGENT_NAME", "voice-agent")
# On SIGTERM a worker takes no new sessions and gives live ones this long before ending them.
VOICE_WORKER_DRAIN_TIMEOUT = _env_int("VOICE_WORKER_DRAIN_TIMEOUT", 120, minimum=0, maximum=86400)
# Sessions one agent worker takes before LiveKit sends new ones to other workers.
VOICE_WORKER_MAX_SESSIONS = _env_int("VOICE_WORKER_MAX_SESSIONS", 10, minimum=1, maximum=1000)
# How a worker runs its sessions: "process" (each its own process: isolated, more memory and
# CPU per session) or "thread" (each a thread of the worker: they share its models and
# libraries; run one worker per core). bench/README.md, "Capacity", has the costs of each.
# Threads are not the default yet: in the e2e soak their long-lived database
# connection held more PostgreSQL descriptors than the soak's leak bound allows (not yet
# understood).
VOICE_WORKER_JOB_EXECUTOR = _env_choice("VOICE_WORKER_JOB_EXECUTOR", "process", ("process", "thread"))
# Health/info HTTP port of an agent worker (0: any free port).
VOICE_WORKER_PORT = _env_int("VOICE_WORKER_PORT", 8081, minimum=0, maximum=65535)
# How long POST /session waits for a dispatched agent to report that it has started.
VOICE_START_TIMEOUT = _env_float("VOICE_START_TIMEOUT", 20.0, minimum=1.0, maximum=120.0)
# Live agents touch their session row this often; a row silent for the timeout belongs to a
# host that died, and is ended (reason error) by the sweeper in every web process.
VOICE_HEARTBEAT_INTERVAL = _env_float("VOICE_HEARTBEAT_INTERVAL", 5.0, minimum=0.1, maximum=60.0)
VOICE_HEARTBEAT_TIMEOUT = _env_float("VOICE_HEARTBEAT_TIMEOUT", 20.0, minimum=0.5, maximum=600.0)
# How long DELETE waits for the process hosting the agent to confirm it has left.
VOICE_STOP_TIMEOUT = _env_float("VOICE_STOP_TIMEOUT", 10.0, minimum=0.1, maximum=120.0)
# Final transcript lines a session keeps while the database is unreachable, to write once it
# is back; one more is lost, and the session ends saying which (app.voice.agent.event_bridge).
VOICE_FINALS_BUFFER = _env_int("VOICE_FINALS_BUFFER", 300, minimum=1, maximum=100000)

LOG_LEVEL = _env("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "app.voice.structured_logs.RedactSecretsFilter"}},
    "formatters": {"json": {"()": "app.voice.structured_logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The agents framework is chatty at INFO about internals; keep its warnings.
        "livekit": {"level": "WARNING"},
        "livekit.agents": {"level": "WARNING"},
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env("DJANGO_SECURE_SSL_REDIRECT", "1") == "1"
    SECURE_HSTS_SECONDS = 31536000
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
