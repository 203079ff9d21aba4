"""The API's error answers, written into the OpenAPI schema of every `/api/` operation.

Every JSON API answers bad requests the same way (survey.app's STATUS_OF and the security
middleware): `{"error": "...", "problems": [{"field", "row", "message"}]}` with 400, 401,
403, 404, 409, 413, 422 or 429. Handlers declare only their success; this adds the error
statuses once, at startup, so clients and schemathesis see the real contract.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

__all__ = ["ERROR_STATUSES", "document_error_responses"]

ERROR_STATUSES: dict[str, str] = {
    "400": "The request is malformed",
    "401": "No credentials, or unknown ones",
    "403": "The credentials may not do this",
    "404": "No such entity",
    "409": "It exists already, or conflicts with the current state",
    "413": "The body is larger than allowed",
    "422": "The input is invalid; every problem is listed",
    "429": "Too many requests from this client; retry after the Retry-After seconds",
}

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={
        "error": Schema(type=OpenAPIType.STRING),
        "problems": Schema(type=OpenAPIType.ARRAY, items=Schema()),
    },
    description="An error and, for invalid input, each problem (field, row, message)",
)


def document_error_responses(app: Litestar) -> None:
    """`on_startup` hook: add the error statuses to each `/api/` operation that lacks them."""
    schema = app.openapi_schema
    for path, item in (schema.paths or {}).items():
        if not path.startswith("/api/"):
            continue
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Any = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status, description in ERROR_STATUSES.items():
                if status in responses and status != "400":  # a handler's own word wins
                    continue  # (400 is always ours: survey.app reshapes validation errors)
                responses[status] = OpenAPIResponse(
                    description=description,
                    content={"application/json": OpenAPIMediaType(schema=ERROR_SCHEMA)},
                )
            operation.responses = responses
