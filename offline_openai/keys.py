"""What the app carries for its handlers: the engines, loaded once per process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from offline_openai.engines import Engines

ENGINES: web.AppKey[Engines] = web.AppKey("engines")
