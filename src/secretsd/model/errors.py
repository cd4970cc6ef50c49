"""Errors of the Secrets Manager API as types.

Each error carries the AWS error code (rendered as ``__type``), the HTTP status and the
message. The API layer renders them in one place; nothing else formats error JSON. Messages
that the real service returns verbatim live here as constants so that every layer uses the
exact text.
"""

from __future__ import annotations


class SecretsManagerError(Exception):
    """Base of every error the API returns to a client."""

    code = "InternalServiceError"
    status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ResourceNotFound(SecretsManagerError):
    code = "ResourceNotFoundException"


class InvalidParameter(SecretsManagerError):
    code = "InvalidParameterException"


class InvalidRequest(SecretsManagerError):
    code = "InvalidRequestException"


class ResourceExists(SecretsManagerError):
    code = "ResourceExistsException"


class LimitExceeded(SecretsManagerError):
    code = "LimitExceededException"


class InvalidNextToken(SecretsManagerError):
    code = "InvalidNextTokenException"


class MalformedPolicyDocument(SecretsManagerError):
    code = "MalformedPolicyDocumentException"


class PublicPolicy(SecretsManagerError):
    code = "PublicPolicyException"


class PreconditionNotMet(SecretsManagerError):
    code = "PreconditionNotMetException"


class DecryptionFailure(SecretsManagerError):
    code = "DecryptionFailure"


class EncryptionFailure(SecretsManagerError):
    code = "EncryptionFailure"


class InternalServiceError(SecretsManagerError):
    code = "InternalServiceError"
    status = 500


# Protocol-level errors (raised before an operation runs).
class UnknownOperation(SecretsManagerError):
    code = "UnknownOperationException"


class SerializationError(SecretsManagerError):
    code = "SerializationException"


class ValidationError(SecretsManagerError):
    code = "ValidationException"


def constraint(path: str, text: str, value: object | None = None) -> ValidationError:
    """A member that breaks a constraint of the service model, in AWS's words. ``path`` is
    the member's path as AWS spells it ("versionStages", "filters.1.member.values"); a
    value that must not be shown (a secret, a long text) is left out, as AWS leaves it."""
    shown = "" if value is None else f"Value '{value}' "
    return ValidationError(
        f"1 validation error detected: {shown}at '{path}' failed to satisfy constraint: {text}"
    )


def item_constraints(*texts: str) -> str:
    """The constraint text for members of a list, as AWS words it."""
    return f"Member must satisfy constraint: [{', '.join(texts)}]"


# Authentication errors: HTTP 403.
class AuthError(SecretsManagerError):
    status = 403


class MissingAuthenticationToken(AuthError):
    code = "MissingAuthenticationTokenException"


class UnrecognizedClient(AuthError):
    code = "UnrecognizedClientException"


class InvalidSignature(AuthError):
    code = "InvalidSignatureException"


class IncompleteSignature(AuthError):
    code = "IncompleteSignatureException"


class AccessDenied(AuthError):
    code = "AccessDeniedException"


class NotAuthorized(SecretsManagerError):
    """A request that IAM's evaluation refused: HTTP 400, unlike a signature's AccessDenied."""

    code = "AccessDeniedException"


# Messages recorded from the real service.
SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret."
STAGE_NOT_ON_VERSION = (
    "You provided a VersionStage that is not associated to the provided VersionId."
)
TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
NAME_SCHEDULED_FOR_DELETION = (
    "You can't create this secret because a secret with this name is already scheduled "
    "for deletion."
)
# AWS's answer, as a ValidationException, to a Name or SecretId with a character no secret
# name may hold, whatever the operation.
INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
    "following: -/_+=.@!"
)
# RotateSecret naming a function the service can't run (for us: none of that name is built
# in or configured), in AWS's words.
CANNOT_INVOKE_FUNCTION = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)
# A KmsKeyId in none of the forms a key can be named in, as a caller recorded AWS's answer.
INVALID_KMS_KEY = "The operation failed because of an invalid KMS key: Invalid keyId"
ROTATION_IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
NO_ROTATION_FUNCTION = "No Lambda rotation function ARN is associated with this secret."


def secret_exists(name: str) -> str:
    return f"The operation failed because the secret {name} already exists."


def token_in_use(token: str, arn: str) -> str:
    """A ClientRequestToken repeated with another value, in AWS's words."""
    return (
        f"You can't use ClientRequestToken {token} because that value is already in use for "
        f"a version of secret {arn}."
    )


def value_not_found_for_stage(stage: str) -> str:
    return f"Secrets Manager can't find the specified secret value for staging label: {stage}"


def value_not_found_for_version(version_id: str) -> str:
    return f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"


# IAM's errors (the AWS Query protocol renders them as XML; codes and statuses as IAM's).
class NoSuchEntity(SecretsManagerError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(SecretsManagerError):
    code = "EntityAlreadyExists"
    status = 409


class MalformedIamPolicy(SecretsManagerError):
    code = "MalformedPolicyDocument"


class IamLimitExceeded(SecretsManagerError):
    code = "LimitExceeded"
    status = 409


class DeleteConflict(SecretsManagerError):
    code = "DeleteConflict"
    status = 409


class IamValidationError(SecretsManagerError):
    code = "ValidationError"


class InvalidAction(SecretsManagerError):
    code = "InvalidAction"


class IamAccessDenied(SecretsManagerError):
    code = "AccessDenied"
    status = 403


def not_authorized(caller_arn: str, action: str, resource: str | None, reason: str) -> str:
    """AWS's AccessDenied message. ``reason`` is ``no-allow``, ``identity`` or ``resource``
    (where the explicit deny was); ``resource`` is None for actions on no resource."""
    on = "" if resource is None else f" on resource: {resource}"
    if reason == "identity":
        why = "with an explicit deny in an identity-based policy"
    elif reason == "resource":
        why = "with an explicit deny in a resource-based policy"
    else:
        why = f"because no identity-based policy allows the {action} action"
    return f"User: {caller_arn} is not authorized to perform: {action}{on} {why}"
