"""Request body parsing that cannot be pushed into a 500 or a memory blow-up."""

from __future__ import annotations

import io
from typing import Any

from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

MAX_JSON_BODY_BYTES = 16 * 1024  # our bodies are two short names


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, plus a size cap (DRF streams bodies past Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE) and a 400, not a 500, for pathologically nested JSON."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(MAX_JSON_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"The JSON body must be at most {MAX_JSON_BODY_BYTES} bytes.")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
