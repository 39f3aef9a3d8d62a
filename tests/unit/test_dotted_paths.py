"""Every dotted path the configuration names resolves to a real module or object.

Django, DRF, drf-spectacular, logging and the provider registry import these strings only
when they first need them (often on the first request of a kind, or in a worker process),
so a path left behind by a module move would otherwise surface late and far away. The
default settings of each environment are read as configured, not as the tests override
them (the unit tests swap in the fake LiveKit gateway, for one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

import pytest
from django.utils.module_loading import import_string

import app.settings as configured
import app.urls
from app.voice.agent.providers import BUILTIN_SETS
from tests.unit.support import PRODUCTION, load_settings

SETTINGS_READ = [
    "ROOT_URLCONF", "ASGI_APPLICATION", "INSTALLED_APPS", "MIDDLEWARE", "REST_FRAMEWORK",
    "SPECTACULAR_SETTINGS", "LOGGING", "CHANNEL_LAYERS", "CACHES", "LIVEKIT_GATEWAY",
]


def dotted_paths(settings: Mapping[str, Any]) -> dict[str, str]:
    """Where each dotted path sits in the settings (a readable test id) → the path."""
    rest, logging, spectacular = settings["REST_FRAMEWORK"], settings["LOGGING"], settings["SPECTACULAR_SETTINGS"]
    paths = {
        "ROOT_URLCONF": settings["ROOT_URLCONF"],
        "ASGI_APPLICATION": settings["ASGI_APPLICATION"],
        "LIVEKIT_GATEWAY": settings["LIVEKIT_GATEWAY"],
        "REST_FRAMEWORK.EXCEPTION_HANDLER": rest["EXCEPTION_HANDLER"],
        "REST_FRAMEWORK.DEFAULT_SCHEMA_CLASS": rest["DEFAULT_SCHEMA_CLASS"],
    }
    for key in ("DEFAULT_PARSER_CLASSES", "DEFAULT_RENDERER_CLASSES"):
        paths.update({f"REST_FRAMEWORK.{key}[{path}]": path for path in rest[key]})
    for kind in ("filters", "formatters"):
        paths.update({f"LOGGING.{kind}.{name}": entry["()"] for name, entry in logging[kind].items() if "()" in entry})
    paths.update({f"LOGGING.handlers.{name}": entry["class"] for name, entry in logging["handlers"].items()})
    paths.update({f"SPECTACULAR_SETTINGS.ENUM_NAME_OVERRIDES.{name}": path
                  for name, path in spectacular["ENUM_NAME_OVERRIDES"].items()})
    paths.update({f"INSTALLED_APPS[{path}]": path for path in settings["INSTALLED_APPS"]})
    paths.update({f"MIDDLEWARE[{path}]": path for path in settings["MIDDLEWARE"]})
    for name in ("CHANNEL_LAYERS", "CACHES"):
        paths.update({f"{name}.{alias}.BACKEND": entry["BACKEND"] for alias, entry in settings[name].items()})
    return paths


def resolve(path: str) -> object:
    """The module a dotted path names, or else the attribute it names in its parent module."""
    try:
        return import_module(path)
    except ModuleNotFoundError as missing:
        if missing.name != path:
            raise  # the module exists but imports something that does not
    return import_string(path)


MODULES = {"ROOT_URLCONF", "INSTALLED_APPS"}  # these name modules; everything else an object
DEVELOPMENT = dotted_paths(vars(configured))
URL_HANDLERS = {f"app.urls.{name}": getattr(app.urls, name) for name in ("handler400", "handler403", "handler500")}
PROVIDER_SETS = {f"BUILTIN_SETS.{name}": path for name, path in BUILTIN_SETS.items()}


def test_the_settings_read_are_those_the_app_runs_with() -> None:
    """The module read here is the configured one, and the dotted paths found include the
    ones a module move has broken before."""
    assert configured.__name__ == "app.settings"
    assert {"LIVEKIT_GATEWAY", "REST_FRAMEWORK.EXCEPTION_HANDLER", "LOGGING.filters.redact",
            "LOGGING.formatters.json", "SPECTACULAR_SETTINGS.ENUM_NAME_OVERRIDES.HealthStatusEnum",
            "REST_FRAMEWORK.DEFAULT_PARSER_CLASSES[app.voice.http.parsers.BoundedJSONParser]"} <= set(DEVELOPMENT)
    assert DEVELOPMENT["LIVEKIT_GATEWAY"] == "app.voice.agent.livekit_gateway.LiveKitGateway"


@pytest.mark.parametrize(("where", "path"), sorted(DEVELOPMENT.items()), ids=sorted(DEVELOPMENT))
def test_each_dotted_path_in_the_development_settings_imports(where: str, path: str) -> None:
    target = resolve(path)
    if where.split("[")[0] not in MODULES:
        assert callable(target), f"{where} = {path!r} is not a class or function"


def test_each_dotted_path_in_the_production_settings_imports() -> None:
    """Production adds its own backends (Redis for channels and the cache)."""
    probe = (
        "import json, app.settings as s; "
        f"print(json.dumps({{name: getattr(s, name) for name in {SETTINGS_READ!r}}}, default=str))"
    )
    result = load_settings(PRODUCTION, probe)
    assert result.returncode == 0, result.stderr
    production = dotted_paths(json.loads(result.stdout))
    assert production["CHANNEL_LAYERS.default.BACKEND"] == "channels_redis.core.RedisChannelLayer"
    for where, path in production.items():
        target = resolve(path)
        assert where.split("[")[0] in MODULES or callable(target), (where, path)


@pytest.mark.parametrize(("where", "path"), sorted(URL_HANDLERS.items()), ids=sorted(URL_HANDLERS))
def test_each_error_handler_of_the_urlconf_imports(where: str, path: str) -> None:
    handler: Callable[..., object] = import_string(path)
    assert callable(handler), (where, path)


@pytest.mark.parametrize(("name", "path"), sorted(PROVIDER_SETS.items()), ids=sorted(PROVIDER_SETS))
def test_each_builtin_provider_set_imports(name: str, path: str) -> None:
    assert callable(import_string(path)), (name, path)
