"""Errors as RFC 9457 ``application/problem+json`` (API) or a plain page (web)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, current_app, json, render_template, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.observability import scrubbed_traceback

PROBLEM = "application/problem+json"
log = logging.getLogger("app.errors")
#: JSON bodies nested deeper than this are a 400 before any parser sees them
MAX_JSON_DEPTH = 64
#: a path segment longer than this, or a URL (path and query) longer than MAX_URL, is a 414
MAX_SEGMENT = 256
MAX_URL = 4096


class ApiError(Exception):
    """A client error with the offending fields; rendered as problem+json (``type``: the
    problem type, e.g. ``duplicate-observation``; default ``about:blank``)."""

    def __init__(self, status: int, title: str, detail: str = "",
                 errors: list[dict[str, str]] | None = None, type: str = "about:blank",
                 kinds: list[str] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail or title
        self.errors = errors or []
        self.type = type
        #: per error, a kind of error without values (e.g. ``greater_than_equal``): what the
        #: log line says instead of the messages, which may quote the values sent
        self.kinds = kinds or []

    def log_detail(self) -> str:
        """The fields and kinds of error, never a value ("age: greater_than_equal")."""
        if not self.errors:
            return self.title
        kinds = self.kinds or [self.type if self.type != "about:blank" else "invalid"]
        return "; ".join(f"{e.get('field', 'body')}: {kinds[min(i, len(kinds) - 1)]}"
                         for i, e in enumerate(self.errors))


def field_error(field: str, message: str, status: int = 422, kind: str = "invalid"
                ) -> ApiError:
    """An ApiError about one field (``field`` is a dotted path, e.g. ``entry.0.resource``;
    ``kind`` is what the log says, without values)."""
    return ApiError(status, "Invalid input", f"{field}: {message}",
                    [{"field": field, "message": message}], kinds=[kind])


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
    kinds: dict[str, list[str]] = {}
    for e in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in e["loc"] if not _is_union_tag(p))
        field = (prefix + "." if prefix else "") + _loc(loc) if loc else (prefix or "body")
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        by_field.setdefault(field, []).append(msg)
        kinds.setdefault(field, []).append(e["type"])
    errors = [{"field": f, "message": " or ".join(m)} for f, m in by_field.items()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ApiError(422, "Invalid input", detail, errors,
                    kinds=["|".join(dict.fromkeys(k)) for k in kinds.values()])


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
    """The rejected-request line: status, the fields and kinds of error, never the values
    sent (``detail`` is ``ApiError.log_detail`` or an HTTP status name)."""
    log.warning("rejected request", extra={"status": status, "detail": detail[:500],
                                           "method": request.method, "path": request.path})


def _refuse_long_url() -> None:
    """``before_request``: a path segment over MAX_SEGMENT characters or a URL over MAX_URL
    is a 414 problem (gunicorn lets such request lines through: ``limit_request_line``)."""
    path = request.path
    url = len(request.full_path if request.query_string else path)
    if url > MAX_URL or any(len(part) > MAX_SEGMENT for part in path.split("/")):
        raise ApiError(414, "URI Too Long",
                       f"the URL is too long (a path segment may have at most {MAX_SEGMENT} "
                       f"characters, the URL {MAX_URL})",
                       [{"field": "path", "message": "too long"}], kinds=["too_long"])


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


#: a JSON string (skipped) or a bracket (counted)
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text ``data`` nests arrays/objects deeper than ``limit`` (a scan of
    the brackets outside strings: no parser recursion)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for m in _JSON_TOKEN.finditer(data):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _check_body() -> None:
    """``before_request``: a chunked body over MAX_CONTENT_LENGTH is a 413 (werkzeug stops
    reading at the limit and would hand the view a cut body), and a JSON body nested deeper
    than MAX_JSON_DEPTH is a 400, for every endpoint (views parse the cached body later)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    chunked = request.content_length is None and "wsgi.input_terminated" in request.environ
    if not chunked and not _is_json(request.mimetype):
        return
    data = request.get_data(cache=True)
    if chunked and limit is not None and len(data) >= limit:
        raw = request.environ["wsgi.input"]
        if raw.read(1):  # the stream goes on past the limit
            raise RequestEntityTooLarge()
    if _is_json(request.mimetype) and json_too_deep(data):
        raise ApiError(400, "Malformed JSON",
                       f"body: nested deeper than {MAX_JSON_DEPTH} levels",
                       [{"field": "body", "message": "nested too deeply"}], kinds=["too_deep"])


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
    """Register the error handlers; refuse NUL characters in URLs, over-long URLs (414),
    chunked bodies over the size limit (413) and JSON nested too deeply (400)."""
    app.before_request(_refuse_long_url)
    app.before_request(_refuse_nul)
    app.before_request(_check_body)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        _log_client_error(exc.status, exc.log_detail())
        return problem(exc.status, exc.title, exc.detail, exc.errors, type=exc.type)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status < 500:
            _log_client_error(status, exc.name)
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
        # the exception's type and frames, never its message (it may quote values or SQL
        # parameters); and no exc_info, so no handler can print the message either
        log.error("unhandled error", extra={"exc_type": type(exc).__name__,
                                            "exc": scrubbed_traceback(exc),
                                            "method": request.method, "path": request.path})
        if wants_problem():
            return problem(500, "Internal Server Error", "unexpected error; it was logged")
        return Response("Internal Server Error", status=500, mimetype="text/plain")
