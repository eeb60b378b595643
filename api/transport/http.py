"""HTTP building blocks shared by the API modules: the JSON response class and the service version."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class ORJSONResponse(JSONResponse):
    """JSON rendered by orjson (numpy-aware, several times faster than the standard library)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


SERVICE_VERSION = "0.1.0"
