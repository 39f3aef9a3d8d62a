"""Request bodies checked against the ``openai`` SDK's own parameter types, with OpenAI's
400 answers: the SDK's TypedDicts are the contract, so the double follows the SDK in the lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from offline_openai.errors import OpenAIError

T = TypeVar("T")

# pydantic puts union members and validator names (`ChatCompletionUserMessageParam`,
# `function-after[...]`) in an error's location; OpenAI's parameter names are snake_case.
_FIELD = re.compile(r"[a-z0-9_]+")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or OpenAI's 400."""
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpenAIError(f"We could not parse the JSON body of your request: {exc}.") from None
    if not isinstance(body, dict):
        raise OpenAIError("The body of your request must be a JSON object.")
    return body


class RequestParams(Generic[T]):
    """One endpoint's parameters: a TypedDict of the SDK, its validator built once."""

    def __init__(self, typed_dict: type[T]) -> None:
        self._adapter = TypeAdapter(typed_dict)
        self._fields: frozenset[str] = typed_dict.__required_keys__ | typed_dict.__optional_keys__  # type: ignore[attr-defined]

    def parse(self, body: dict[str, Any]) -> T:
        """The validated body, every iterable a list; unknown top-level arguments refused as
        OpenAI does (nested unknown keys are ignored, as pydantic's TypedDicts do)."""
        if unknown := sorted(set(body) - self._fields):
            raise OpenAIError(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
        try:
            params: T = _materialise(self._adapter.validate_python(body), ())
        except ValidationError as exc:
            raise invalid(exc, ()) from None
        return params


def _materialise(value: Any, path: tuple[str | int, ...]) -> Any:
    """Lists in place of the lazy iterators pydantic returns for the SDK's ``Iterable[...]``
    fields: their items are validated only when read, so read them here, before answering."""
    if isinstance(value, dict):
        return {key: _materialise(item, (*path, key)) for key, item in value.items()}
    if isinstance(value, Iterator):
        try:
            items = list(value)
        except ValidationError as exc:
            raise invalid(exc, path) from None
        return [_materialise(item, (*path, index)) for index, item in enumerate(items)]
    return value


def param_name(location: tuple[str | int, ...]) -> str:
    """OpenAI's spelling of a parameter's location: ``messages[0].content``."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif _FIELD.fullmatch(part):
            name += f".{part}" if name else part
    return name


def invalid(exc: ValidationError, path: tuple[str | int, ...]) -> OpenAIError:
    """OpenAI's 400 for the first invalid parameter, with every reason pydantic gave for it
    (a union, such as a message's role, fails once per member)."""
    errors: list[ErrorDetails] = exc.errors(include_url=False, include_input=False)
    param = param_name((*path, *errors[0]["loc"]))
    if errors[0]["type"] == "missing":
        return OpenAIError(f"Missing required parameter: '{param}'.", param=param)
    reasons = dict.fromkeys(e["msg"] for e in errors if param_name((*path, *e["loc"])) == param)
    return OpenAIError(f"Invalid value for '{param}': {'; '.join(reasons)}.", param=param)
