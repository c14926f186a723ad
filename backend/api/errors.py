"""Map domain errors and validation failures to HTTP in one place: clear 4xx, never a 500."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import ConflictError, InvalidInputError, NotFoundError
from backend.llm.prompts import PromptError
from backend.observability.deadline import DeadlineExceeded
from backend.recommender.vector_store import VectorStoreError
from backend.services.auth import AuthError, NotAllowedError

log = logging.getLogger(__name__)


def _where(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "request"
    kind, *rest = loc
    path = ".".join(str(p) for p in rest)
    names = {"path": "path parameter", "query": "query parameter", "body": "body field"}
    return f"{names.get(str(kind), str(kind))} {path}".strip() if path else str(kind)


def validation_message(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{_where(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every documented method at this path. Starlette's 405 names only the methods of the
    first route whose path matched, though several routes may share a path."""
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422, content={"detail": validation_message(errors), "errors": errors}
        )

    @app.exception_handler(AuthError)
    async def _unauthenticated(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(status_code=401, content={"detail": str(exc)})

    @app.exception_handler(NotAllowedError)
    async def _forbidden(_: Request, exc: NotAllowedError) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc)})

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(InvalidInputError)
    async def _bad_input(_: Request, exc: InvalidInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    # Dependencies that cannot answer: a clear 503 the client may retry, never a 500. The
    # engine's error hook and the vector store already counted and logged the outage once;
    # nothing is logged here per request.
    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        cancelled = "statement timeout" in str(exc) or isinstance(exc, sa_exc.TimeoutError)
        detail = (
            "the database did not answer within the request deadline; retry shortly"
            if cancelled
            else "the database is unavailable; retry shortly"
        )
        return _unavailable(detail)

    @app.exception_handler(DeadlineExceeded)
    async def _deadline(_: Request, exc: DeadlineExceeded) -> JSONResponse:
        return _unavailable(f"{exc}; retry shortly")

    @app.exception_handler(VectorStoreError)
    async def _vectors(_: Request, exc: VectorStoreError) -> JSONResponse:
        return _unavailable(f"semantic search is unavailable: {exc}")

    @app.exception_handler(PromptError)
    async def _prompt(_: Request, exc: PromptError) -> JSONResponse:
        log.error("prompt template failed: %s", exc)
        return JSONResponse(
            status_code=503, content={"detail": "explanation templates are misconfigured"}
        )


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "1"})
