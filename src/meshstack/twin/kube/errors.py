"""API errors as the Kubernetes API server reports them: a ``Status`` object."""

from __future__ import annotations

from typing import Any

_REASON_CODES = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Gone": 410,
    "Invalid": 422,
    "UnsupportedMediaType": 415,
    "InternalError": 500,
    "Timeout": 504,
}


class ApiError(Exception):
    """An error the server answers with a ``Status`` object and its HTTP code."""

    def __init__(
        self,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.code = code or _REASON_CODES.get(reason, 500)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _what(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    what = _what(group, plural)
    return ApiError(
        "NotFound",
        f'{what} "{name}" not found',
        {"name": name, "group": group, "kind": plural},
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    what = _what(group, plural)
    return ApiError(
        "AlreadyExists",
        f'{what} "{name}" already exists',
        {"name": name, "group": group, "kind": plural},
    )


def conflict(group: str, plural: str, name: str) -> ApiError:
    what = _what(group, plural)
    return ApiError(
        "Conflict",
        f'Operation cannot be fulfilled on {what} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": group, "kind": plural},
    )


def invalid(kind: str, name: str, field: str, message: str) -> ApiError:
    return ApiError(
        "Invalid",
        f'{kind} "{name}" is invalid: {field}: {message}',
        {
            "name": name,
            "kind": kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": message, "field": field}
            ],
        },
    )


def bad_request(message: str) -> ApiError:
    return ApiError("BadRequest", message)
