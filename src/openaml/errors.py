"""One exception class per error shape of the service model, plus protocol-level errors.

Every error that reaches a client is a ServiceError: `protocol` turns it into
`{"__type": error_type, "message": ...}` with `http_status`. Anything else is a bug and becomes
InternalServerException there.
"""

from __future__ import annotations

from typing import ClassVar

MAX_MESSAGE = 2048


class ServiceError(Exception):
    """An error answered to the client with an AWS error type and an HTTP status."""

    error_type: ClassVar[str] = "ServiceError"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message[:MAX_MESSAGE])

    @property
    def message(self) -> str:
        return str(self)


# The eight error shapes of the machinelearning service model.
class InvalidInputException(ServiceError):
    error_type = "InvalidInputException"


class ResourceNotFoundException(ServiceError):
    error_type = "ResourceNotFoundException"
    http_status = 404


class IdempotentParameterMismatchException(ServiceError):
    error_type = "IdempotentParameterMismatchException"


class LimitExceededException(ServiceError):
    error_type = "LimitExceededException"
    http_status = 417


class PredictorNotMountedException(ServiceError):
    error_type = "PredictorNotMountedException"


class InvalidTagException(ServiceError):
    error_type = "InvalidTagException"


class TagLimitExceededException(ServiceError):
    error_type = "TagLimitExceededException"


class InternalServerException(ServiceError):
    error_type = "InternalServerException"
    http_status = 500


MODELED_ERRORS: tuple[type[ServiceError], ...] = (
    InvalidInputException,
    ResourceNotFoundException,
    IdempotentParameterMismatchException,
    LimitExceededException,
    PredictorNotMountedException,
    InvalidTagException,
    TagLimitExceededException,
    InternalServerException,
)


# Errors of the wire protocol and of authentication, common to all AWS JSON services.
class UnknownOperationException(ServiceError):
    error_type = "UnknownOperationException"


class SerializationException(ServiceError):
    error_type = "SerializationException"


class UnsupportedMediaTypeException(ServiceError):
    error_type = "UnsupportedMediaTypeException"
    http_status = 415


class RequestEntityTooLargeException(ServiceError):
    error_type = "RequestEntityTooLargeException"
    http_status = 413


class ThrottlingException(ServiceError):
    """The server is busy with what other requests sent (AWS SDKs retry it, backing off)."""

    error_type = "ThrottlingException"


class MissingAuthenticationTokenException(ServiceError):
    error_type = "MissingAuthenticationTokenException"


class UnrecognizedClientException(ServiceError):
    error_type = "UnrecognizedClientException"


class InvalidSignatureException(ServiceError):
    error_type = "InvalidSignatureException"


class IncompleteSignatureException(ServiceError):
    error_type = "IncompleteSignatureException"


class AccessDeniedException(ServiceError):
    error_type = "AccessDeniedException"
    http_status = 403
