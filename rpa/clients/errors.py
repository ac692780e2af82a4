"""The exceptions that every client raises, whatever library it wraps.

Each client translates its library's errors into these classes in one helper, chaining the
original with `raise ... from err`, so the jobs catch only these. Messages carry the service,
the method and path or action, and the status: never a token, a password or a whole body.
"""


class ClientError(Exception):
    """A call to an outside system failed."""

    def __init__(self, message: str, *, service: str, status: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status


class InvalidRequest(ClientError):
    """The service rejected the request as malformed (400, 422, AWS ValidationError)."""


class Unauthorized(ClientError):
    """The credentials are missing, wrong or expired (401)."""


class Forbidden(ClientError):
    """The credentials are valid but lack the permission (403, AWS AccessDenied)."""


class NotFound(ClientError):
    """The resource does not exist (404)."""


class Conflict(ClientError):
    """The request conflicts with the current state (409, a Vault check-and-set mismatch)."""


class Throttled(ClientError):
    """The service asked the client to slow down (429, AWS Throttling) and retries ran out."""


class Unavailable(ClientError):
    """The service could not be reached or failed (5xx, timeout, connection error)."""


class InvalidResponse(ClientError):
    """The service returned success with a body that is not the expected shape."""


class PartialFailure(ClientError):
    """A batch call succeeded as a whole but listed items that failed (S3 DeleteObjects)."""
