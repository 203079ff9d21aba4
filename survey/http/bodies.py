"""Request bodies of the JSON API decoded into typed structs, or a 422 that names the field."""

from __future__ import annotations

from typing import Any

import msgspec

from survey.errors import InvalidInput, Problem


def parse_body(body: bytes, schema: type[Any]) -> Any:
    """Decode a JSON body into `schema`; InvalidInput (422) naming the field otherwise."""
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            "the request body does not fit", [Problem(str(exc), field=_field_of(exc))]
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


def _field_of(exc: msgspec.ValidationError) -> str | None:
    text = str(exc)
    marker = "at `$."
    if marker in text:
        return text.split(marker, 1)[1].rstrip("`")
    if "required field `" in text or "unknown field `" in text:
        return text.split("`")[1]
    return None
