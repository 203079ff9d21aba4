"""The API's description of itself: `/schema/openapi.json` and the documentation pages.

- Who may call what: the security schemes (an agency system's key, a staff token or the staff
  session cookie, the SMS provider's HMAC signature) are components of the schema, and each
  operation's `security` is read from its route's guards (`openapi_security` on the guard
  classes of survey.http.guards), so the schema cannot drift from what is enforced. Routes
  without a guard are public (`security: []`) unless they declare their own (the webhooks).
- Request bodies: handlers read their bodies themselves (the ingestion hot path decodes with
  msgspec; the others through survey.http.bodies, for a 422 that names the field), so Litestar
  sees no `data` parameter. `documented_body(...)` declares the body's schema and examples as
  a dependency that the handler never asks for: Litestar documents a dependency's `data`
  parameter, and never runs a dependency the handler does not name, so the hot path is
  unchanged. `extra_request_media(...)` adds media types (a CSV upload also as text/csv).
- Error answers: every JSON API answers bad requests the same way (survey.app's STATUS_OF and
  the security middleware): `{"error": "...", "problems": [{"message", "field", "row"}]}` with
  400, 401, 403, 404, 409, 413, 422 or 429. Handlers declare only their success; the startup
  hook adds the error statuses once, so clients and schemathesis see the real contract.
- The documentation pages (`/schema` Swagger UI, `/schema/redoc` Redoc) load their scripts and
  styles from this site (`/static/`, vendored from the swagger-ui-dist and redoc npm packages
  with their licences), never from a CDN: they work on a closed network and under the site's
  Content-Security-Policy (no inline script; `/static/api-docs.js` starts the viewer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Annotated, Any

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    YamlRenderPlugin,
)
from litestar.openapi.spec import (
    Components,
    Encoding,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.params import Body
from litestar.routes import HTTPRoute

__all__ = [
    "AGENCY_KEY",
    "ERROR_STATUSES",
    "STAFF_SESSION",
    "STAFF_TOKEN",
    "WEBHOOK_SIGNATURE",
    "api_documentation",
    "complete_schema",
    "documented_body",
    "extra_request_media",
    "extra_response_media",
    "json_example",
    "multipart_part_types",
]

TITLE = "Citizen satisfaction survey"
SCHEMA_PATH = "/schema"
# The names of the security schemes (components.securitySchemes).
AGENCY_KEY = "agencyKey"
STAFF_TOKEN = "staffToken"
STAFF_SESSION = "staffSession"
WEBHOOK_SIGNATURE = "webhookSignature"

SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    AGENCY_KEY: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="agk_...",
        description=(
            "An agency system's ingestion key, `Authorization: Bearer agk_...`. Issued by an "
            "administrator (`survey agencies rotate-key`, `POST /api/v1/agencies/{code}/keys`) "
            "and shown once."
        ),
    ),
    STAFF_TOKEN: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="stk_...",
        description=(
            "A staff member's API token, `Authorization: Bearer stk_...` "
            "(`survey users token`, `POST /api/v1/users/{username}/tokens`). What it may do "
            "depends on the user's role: admin, statistician, viewer or agency."
        ),
    ),
    STAFF_SESSION: SecurityScheme(
        type="apiKey",
        name="survey_session",
        security_scheme_in="cookie",
        description=(
            "The session cookie a browser gets by signing in at `/login`. A change (any method "
            "but GET) made with it must also send the session's CSRF token as the "
            "`X-CSRF-Token` header (`GET /api/v1/me` tells it)."
        ),
    ),
    WEBHOOK_SIGNATURE: SecurityScheme(
        type="apiKey",
        name="X-Survey-Signature",
        security_scheme_in="header",
        description=(
            "The SMS provider's signature: the hex HMAC-SHA256 of the raw request body under "
            "`SURVEY_SMS_WEBHOOK_SECRET`, checked in constant time before the body is read."
        ),
    ),
}

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
ERROR_COMPONENT = "Error"
ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={
        "error": Schema(type=OpenAPIType.STRING, description="What is wrong, for a person"),
        "problems": Schema(
            type=OpenAPIType.ARRAY,
            description="For invalid input: every problem found, not just the first",
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["message"],
                properties={
                    "message": Schema(type=OpenAPIType.STRING),
                    "field": Schema(
                        type=OpenAPIType.STRING, description="The field (or key path) it is about"
                    ),
                    "row": Schema(
                        type=OpenAPIType.INTEGER, description="The row of a file it is about"
                    ),
                },
            ),
        ),
    },
    description="An error and, for invalid input, each problem (message, field, row)",
    examples=[
        {
            "error": "the transaction was rejected",
            "problems": [
                {
                    "message": "completed_at must include a UTC offset (e.g. +03:30 or Z); "
                    "got '2026-03-09'",
                    "field": "completed_at",
                }
            ],
        }
    ],
)

TAGS = [
    Tag(
        name="ingestion",
        description="Agencies report completed service transactions (JSON or a CSV file) and "
        "read their frame counts. Guide: docs/ingestion.md.",
    ),
    Tag(name="sms", description="The SMS provider's signed webhooks. Guide: docs/sms.md."),
    Tag(
        name="releases",
        description="Published releases are open data (no key); staff compute, preview, "
        "publish and correct them. Guide: docs/publication.md.",
    ),
    Tag(name="registry", description="Agencies, services and their keys (staff)."),
    Tag(name="plans", description="Sampling plans and questionnaires (staff)."),
    Tag(name="staff", description="Staff users and the audit log (admins)."),
    Tag(name="rates", description="AAPOR response rates (staff)."),
    Tag(name="export", description="The analysis export as CSV (statisticians, admins)."),
    Tag(name="analysis", description="Regression, key drivers, small areas (statisticians)."),
]

DESCRIPTION = """\
How agencies' systems, staff scripts and the SMS provider talk to the platform.

**Who may call what.** Each operation lists its security schemes:

* agencies' systems send their ingestion key, `Authorization: Bearer agk_...`;
* staff send their API token, `Authorization: Bearer stk_...`, or use the session of a browser
  signed in at `/login` (changes then need the `X-CSRF-Token` header);
* the SMS provider signs each webhook call, `X-Survey-Signature: <hex HMAC-SHA256 of the body>`;
* published releases and the data dictionary are open to everyone.

**Errors.** Every error is JSON, `{"error": "...", "problems": [{"message", "field", "row"}]}`:
401 without valid credentials, 403 when they may not do this, 413 for a body over the limit,
422 naming every invalid field, 429 with `Retry-After`.

**Reporting transactions.** `POST /api/v1/transactions` takes one transaction or an array of
up to `SURVEY_MAX_BATCH_SIZE`; each record is reported back as accepted, duplicate or rejected
(never whether it was sampled). Agencies without developers upload a CSV file to
`POST /api/v1/transactions/import` and get the same outcome for every row.
"""


def json_example(summary: str, value: Any, description: str | None = None) -> Example:
    """An example of a body or response, shown by the documentation pages."""
    return Example(summary=summary, value=value, description=description)


def documented_body(
    schema: Any,
    *,
    media_type: str = RequestEncodingType.JSON,
    description: str | None = None,
    examples: Sequence[Example] = (),
) -> dict[str, Provide]:
    """Dependencies for a route decorator that document the request body a handler reads
    itself: its schema (`schema`, a msgspec Struct or a type built of them) and examples.

    The dependency is never resolved (the handler does not name it), so the body is parsed
    exactly as before; Litestar only reads the `data` parameter to write the schema.
    """

    def request_body(data: Any) -> None:  # never called: see above
        raise RuntimeError("documented_body only describes the request body")

    request_body.__annotations__ = {
        "data": Annotated[
            schema,
            Body(
                media_type=media_type,
                description=description,
                examples=list(examples) or None,
            ),
        ],
        "return": None,
    }
    return {"documented_request_body": Provide(request_body, sync_to_thread=False)}


def extra_request_media(**media: str) -> dict[str, Any]:
    """`opt` for a route decorator: more media types its body may have, each a text body
    described by the value (e.g. `text_csv="the CSV file"` for `text/csv`)."""
    return {
        "extra_request_media": {name.replace("_", "/", 1): text for name, text in media.items()}
    }


def multipart_part_types(**parts: str) -> dict[str, Any]:
    """`opt` for a route decorator: the media type of each part of its multipart body (the
    schema's `encoding`), e.g. `file="text/csv"`."""
    return {"multipart_part_types": dict(parts)}


def extra_response_media(status: str, **media: str) -> dict[str, Any]:
    """`opt` for a route decorator: more media types its `status` answer may have, each a text
    body described by the value (e.g. a release table as `text_csv=...` beside its JSON)."""
    types = {name.replace("_", "/", 1): text for name, text in media.items()}
    return {"extra_response_media": {status: types}}


# -- the documentation pages ----------------------------------------------------------------


class _OfflinePage(OpenAPIRenderPlugin):
    """A viewer page whose scripts and styles are this site's `/static/` files: no CDN, no
    inline script (the site's Content-Security-Policy holds), no favicon fetched elsewhere."""

    viewer = ""
    styles: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    def __init__(self, *, path: str | Sequence[str]) -> None:
        super().__init__(path=path, favicon="<link rel='icon' href='data:,'>")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(f"{openapi_schema['info']['title']} API ({self.viewer})")
        spec_url = escape(self.get_openapi_json_route(request))
        links = "".join(f"<link rel='stylesheet' href='/static/{name}'>" for name in self.styles)
        scripts = "".join(f"<script src='/static/{name}'></script>" for name in self.scripts)
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title>{self.favicon}{links}</head><body>"
            f"<div id='api-docs' data-viewer='{self.viewer.lower()}' data-spec-url='{spec_url}'>"
            f"<noscript>The API documentation needs JavaScript; the schema itself is at "
            f"<a href='{spec_url}'>{spec_url}</a>.</noscript></div>"
            f"{scripts}<script src='/static/api-docs.js'></script></body></html>"
        ).encode()


class SwaggerPage(_OfflinePage):
    viewer = "Swagger-UI"
    styles = ("swagger-ui.css",)
    scripts = ("swagger-ui-bundle.js",)


class RedocPage(_OfflinePage):
    viewer = "Redoc"
    scripts = ("redoc.standalone.js",)


def api_documentation() -> OpenAPIConfig:
    """The OpenAPI configuration: schema at /schema/openapi.json (and .yaml), Swagger UI at
    /schema and /schema/swagger, Redoc at /schema/redoc, all served from this site."""
    return OpenAPIConfig(
        title=TITLE,
        version="1",
        description=DESCRIPTION,
        path=SCHEMA_PATH,
        tags=TAGS,
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        render_plugins=[
            SwaggerPage(path=["/", "/swagger"]),
            RedocPage(path="/redoc"),
            JsonRenderPlugin(),
            YamlRenderPlugin(),
        ],
    )


# -- completing the generated schema at startup ------------------------------------------------

_METHODS = ("get", "head", "put", "post", "delete", "patch")


def complete_schema(app: Litestar) -> None:
    """`on_startup` hook: each `/api/` operation gets its security (from its guards), the
    error answers and its request-body examples; extra request media types are added."""
    schema = app.openapi_schema
    components = schema.components
    components.schemas = {**(components.schemas or {}), ERROR_COMPONENT: ERROR_SCHEMA}
    for component in components.schemas.values():
        _merge_scalar_unions(component)
    handlers = _handlers_by_operation(app)
    for path, item in (schema.paths or {}).items():
        for method in _METHODS:
            operation: Any = getattr(item, method, None)
            if operation is None:
                continue
            handler = handlers.get((path, method.upper()))
            if handler is not None:
                if operation.security is None:
                    operation.security = _security_of(handler)
                _add_request_media(operation, handler.opt.get("extra_request_media") or {})
                _add_response_media(operation, handler.opt.get("extra_response_media") or {})
                _add_part_types(operation, handler.opt.get("multipart_part_types") or {})
            if operation.request_body is not None:
                _lift_body_examples(operation.request_body.content)
            for media in _media_of(operation):
                _merge_scalar_unions(media.schema)
            if path.startswith("/api/"):
                extra = handler.opt.get("extra_errors") or {} if handler is not None else {}
                _document_errors(operation, {**ERROR_STATUSES, **extra})


def _handlers_by_operation(app: Litestar) -> dict[tuple[str, str], HTTPRouteHandler]:
    found: dict[tuple[str, str], HTTPRouteHandler] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            found[(route.path_format or "/", method)] = handler
    return found


def _security_of(handler: HTTPRouteHandler) -> list[dict[str, list[str]]]:
    """The security requirements the route's guards enforce (any one of them suffices);
    none: a public route."""
    names: list[str] = []
    for guard in handler.resolve_guards():
        for name in getattr(guard, "openapi_security", ()):
            if name not in SECURITY_SCHEMES:
                raise ValueError(f"guard {guard!r} names an unknown security scheme {name!r}")
            if name not in names:
                names.append(name)
    return [{name: []} for name in names]


def _add_request_media(operation: Any, media: Mapping[str, str]) -> None:
    if not media or operation.request_body is None:
        return
    content = operation.request_body.content
    for media_type, description in media.items():
        content[media_type] = OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, description=description)
        )


@dataclass
class _PartEncoding(Encoding):
    """A multipart part's encoding as its content type alone: `style`, `explode` and
    `allowReserved` apply to url-encoded forms only, and written out (Litestar's defaults)
    they make validators parse the part as a form field."""

    @property
    def _exclude_fields(self) -> set[str]:
        return {"style", "explode", "allow_reserved"}


def _add_part_types(operation: Any, parts: Mapping[str, str]) -> None:
    media = (operation.request_body.content if operation.request_body else {}).get(
        RequestEncodingType.MULTI_PART
    )
    if parts and media is None:
        raise ValueError(f"{operation.operation_id} has no multipart body to describe")
    if media is not None and parts:
        media.encoding = {name: _PartEncoding(content_type=kind) for name, kind in parts.items()}


def _add_response_media(operation: Any, media: Mapping[str, Mapping[str, str]]) -> None:
    for status, types in media.items():
        response = (operation.responses or {}).get(status)
        if not isinstance(response, OpenAPIResponse):
            raise ValueError(f"{operation.operation_id} has no {status} answer to add media to")
        content = response.content if response.content is not None else {}
        for media_type, description in types.items():
            content[media_type] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description=description)
            )
        response.content = content


def _media_of(operation: Any) -> list[OpenAPIMediaType]:
    contents = [operation.request_body.content] if operation.request_body is not None else []
    contents += [
        answer.content
        for answer in (operation.responses or {}).values()
        if isinstance(answer, OpenAPIResponse) and answer.content
    ]
    return [media for content in contents for media in content.values()]


def _merge_scalar_unions(schema: Any) -> None:
    """`oneOf` of plain JSON types (how Litestar writes `str | int | float | None`) as one
    `type` list: JSON Schema's `oneOf` needs exactly one match, and an integer matches both
    `integer` and `number`, so the union as written refused every whole number."""
    if not isinstance(schema, Schema):
        return
    members = schema.one_of or []
    plain = [m for m in members if isinstance(m, Schema) and _only_type(m)]
    if members and len(plain) == len(members):
        types: list[OpenAPIType] = []
        for member in plain:
            kinds: list[Any] = member.type if isinstance(member.type, list) else [member.type]
            types += [kind for kind in kinds if kind is not None and kind not in types]
        if OpenAPIType.NUMBER in types and OpenAPIType.INTEGER in types:
            types.remove(OpenAPIType.INTEGER)  # every integer is a number
        schema.one_of = None
        schema.type = types if len(types) > 1 else types[0]
    for child in (
        *(schema.one_of or ()),
        *(schema.any_of or ()),
        *(schema.all_of or ()),
        *(schema.properties or {}).values(),
        schema.items,
        schema.additional_properties,
    ):
        _merge_scalar_unions(child)


def _only_type(schema: Schema) -> bool:
    """A schema that says nothing but its JSON type."""
    fields = {k: v for k, v in vars(schema).items() if v is not None}
    return set(fields) == {"type"}


def _lift_body_examples(content: dict[str, OpenAPIMediaType]) -> None:
    """Body examples where the viewers look for them: the media type's `examples`."""
    for media in content.values():
        schema = media.schema
        if isinstance(schema, Schema) and schema.examples and not media.examples:
            media.examples = {
                f"example-{number}": Example(value=value)
                for number, value in enumerate(schema.examples, start=1)
            }


def _document_errors(operation: Any, statuses: Mapping[str, str]) -> None:
    responses = operation.responses if operation.responses is not None else {}
    for status, description in statuses.items():
        if status in responses and status != "400":  # a handler's own word wins
            continue  # (400 is always ours: survey.app reshapes validation errors)
        responses[status] = OpenAPIResponse(
            description=description,
            content={
                "application/json": OpenAPIMediaType(
                    schema=Reference(ref=f"#/components/schemas/{ERROR_COMPONENT}")
                )
            },
        )
    operation.responses = responses
