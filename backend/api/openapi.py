"""The OpenAPI document describes our real error responses, so clients (and schemathesis)
can rely on it: every error body is ``{"detail": str}`` (422s add ``errors``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from backend.api.admission import NEVER_SHED
from backend.api.policies import policy_for

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "What was wrong"},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ValidationError"},
            "title": "Each invalid field (validation errors only)",
        },
    },
}

_DESCRIPTIONS = {
    "400": "The body could not be read at all (not UTF-8 text)",
    "401": "Missing or invalid credentials",
    "403": "Credentials lack the scope or role",
    "404": "Not found",
    "413": "Request body too large",
    "422": "Invalid input; `detail` says what was wrong",
    "429": "Rate limited; see Retry-After",
    "503": "At capacity (or a dependency is down); retry after Retry-After",
}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        schemas["HTTPValidationError"] = ERROR_SCHEMA
        schemas.setdefault(
            "ValidationError",
            {"type": "object", "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}}},
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                codes = ["422", "429"]
                if not policy_for(method.upper(), path).public:
                    codes += ["401", "403"]
                if "{" in path:
                    codes.append("404")
                if method in ("post", "put", "patch"):
                    codes.append("413")
                if "requestBody" in operation:
                    codes.append("400")
                if path not in NEVER_SHED:  # the admission limit (api.admission)
                    codes.append("503")
                responses = operation.setdefault("responses", {})
                for code in codes:
                    entry = responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
                    entry["content"] = _ERROR_REF
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
