"""Errors as RFC 9457 ``application/problem+json`` (API) or a plain page (web)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, render_template, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

PROBLEM = "application/problem+json"
log = logging.getLogger("app.errors")


class ApiError(Exception):
    """A client error with the offending fields; rendered as problem+json (``type``: the
    problem type, e.g. ``duplicate-observation``; default ``about:blank``)."""

    def __init__(self, status: int, title: str, detail: str = "",
                 errors: list[dict[str, str]] | None = None, type: str = "about:blank"
                 ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail or title
        self.errors = errors or []
        self.type = type


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    """An ApiError about one field (``field`` is a dotted path, e.g. ``entry.0.resource``)."""
    return ApiError(status, "Invalid input", f"{field}: {message}",
                    [{"field": field, "message": message}])


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _is_union_tag(part: object) -> bool:
    """pydantic labels union branches in ``loc`` (e.g. "constrained-float", "literal[...]")."""
    return isinstance(part, str) and (any(c in part for c in "[-(") or part in
                                      {"float", "str", "int", "bool", "datetime"})


def validation_problem(exc: ValidationError, prefix: str = "") -> ApiError:
    """A pydantic ValidationError as a 422 naming each field (one entry per field)."""
    by_field: dict[str, list[str]] = {}
    for e in exc.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not _is_union_tag(p))
        field = (prefix + "." if prefix else "") + _loc(loc) if loc else (prefix or "body")
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        by_field.setdefault(field, []).append(msg)
    errors = [{"field": f, "message": " or ".join(m)} for f, m in by_field.items()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ApiError(422, "Invalid input", detail, errors)


def problem(status: int, title: str, detail: str = "",
            errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None, type: str = "about:blank") -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {"type": type, "title": title, "status": status,
                            "detail": detail or title, "instance": request.path}
    if errors:
        body["errors"] = errors
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def wants_problem() -> bool:
    """True for API paths (problem+json) rather than pages."""
    return request.path.startswith("/api/") or request.path == "/metrics"


def _log_client_error(status: int, detail: str) -> None:
    log.warning("rejected request", extra={"status": status, "detail": detail[:500],
                                           "method": request.method, "path": request.path})


def _refuse_nul() -> None:
    """``before_request``: a NUL character in the path or query is a 400 (PostgreSQL cannot
    store one, so it must never reach a query)."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v
                                      for k, v in request.args.items(multi=True)):
        raise ApiError(400, "Bad Request", "the URL contains a NUL character")


#: pages (not the API) answer these in plain clinical words, with a way back to the ward
PAGE_MESSAGES: dict[int, tuple[str, str]] = {
    404: ("Page not found", "There is no such patient or page: the link may be mistyped, or "
                            "the patient was removed. Find the patient on the ward overview."),
    405: ("Not possible here", "This page cannot be used that way. Go back and use its "
                               "buttons and forms."),
}


def init_app(app: Flask) -> None:
    """Register the error handlers (and refuse NUL characters in URLs)."""
    app.before_request(_refuse_nul)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        _log_client_error(exc.status, exc.detail)
        return problem(exc.status, exc.title, exc.detail, exc.errors, type=exc.type)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status < 500:
            _log_client_error(status, exc.description or "")
        if wants_problem():
            headers = {}
            if status == 405 and exc.valid_methods:
                headers["Allow"] = ", ".join(exc.valid_methods)
            return problem(status, exc.name, exc.description or exc.name, headers=headers)
        if status in PAGE_MESSAGES:
            title, message = PAGE_MESSAGES[status]
            return render_template("error.html", title=title, message=message), status
        return exc

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if wants_problem():
            return problem(500, "Internal Server Error", "unexpected error; it was logged")
        return Response("Internal Server Error", status=500, mimetype="text/plain")
