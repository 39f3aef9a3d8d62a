"""Let respx mock ``httpx2`` clients, which the openai SDK (3.x) now uses.

respx routes and asserts on ``httpx`` requests; this registers one more respx
``Mocker`` (its documented extension point, like its own HTTPXMocker) that gives
httpx2 clients a mock transport translating requests and responses between the
two libraries. Use it as ``respx.mock(using="httpx2")``.
"""

from __future__ import annotations

import httpx
import httpx2
from respx.mocks import Mocker


def _to_httpx(request: httpx2.Request) -> httpx.Request:
    return httpx.Request(
        request.method, str(request.url), headers=request.headers.raw, content=request.content
    )


def _to_httpx2(response: httpx.Response, request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        response.status_code, headers=response.headers.raw, content=response.content, request=request
    )


class HTTPX2Mocker(Mocker):
    name = "httpx2"
    targets = ["httpx2._client.Client", "httpx2._client.AsyncClient"]
    target_methods = ["_transport_for_url"]

    @classmethod
    def mock(cls, spec):  # noqa: ANN001, ANN206 (respx's own signature)
        def _transport_for_url(self, *args, **kwargs):  # noqa: ANN001, ANN202
            async def handle_async(request: httpx2.Request) -> httpx2.Response:
                await request.aread()
                return _to_httpx2(await cls.async_handler(_to_httpx(request)), request)

            def handle_sync(request: httpx2.Request) -> httpx2.Response:
                request.read()
                return _to_httpx2(cls.handler(_to_httpx(request)), request)

            is_async = isinstance(self, httpx2.AsyncClient)
            return httpx2.MockTransport(handle_async if is_async else handle_sync)

        return _transport_for_url
