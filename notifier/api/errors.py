"""Every API error in Quay's shape: status, error_message, error_type, title, detail, type."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from notifier.errors import (BrokerUnavailable, DatabaseNotReady, InvalidInput, NotFound,
                             RateLimited)

ERROR_TYPES = {400: "invalid_request", 401: "invalid_token", 403: "insufficient_scope",
               404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               429: "rate_limited", 503: "unavailable"}


class ApiError(Exception):
    """Raise in a handler to answer ``status`` with ``message`` in the error shape."""

    def __init__(self, status: int, message: str, error_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type or ERROR_TYPES.get(status, "error")


def error_response(request: Request, status: int, message: str,
                   error_type: str | None = None) -> JSONResponse:
    error_type = error_type or ERROR_TYPES.get(status, "error")
    base = str(request.base_url).rstrip("/")
    body = {"status": status, "error_message": message, "error_type": error_type,
            "title": error_type, "detail": message, "type": f"{base}/api/v1/error/{error_type}"}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors():
        if error["type"] == "json_invalid":
            return f"Malformed JSON body: {error.get('ctx', {}).get('error', 'cannot parse it')}"
        where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors, FastAPI's validation errors and HTTP errors to the error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, str(exc), exc.error_type)

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput):
        return error_response(request, 400, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return error_response(request, 404, str(exc))

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited):
        response = error_response(request, 429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(BrokerUnavailable)
    @app.exception_handler(DatabaseNotReady)
    async def _unavailable(request: Request, exc: Exception):
        return error_response(request, 503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(request, 400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error_response(request, exc.status_code, str(exc.detail))
