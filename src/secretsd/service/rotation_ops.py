"""RotateSecret and CancelRotateSecret: the API side of managed rotation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secretsd.model import errors, rotation
from secretsd.model.rotation_dates import refresh_next_rotation, retry_deadline
from secretsd.model.schedule import parse_rotation_rules
from secretsd.model.secret import Secret

from . import params
from .edits import Edit
from .rotation_requests import RotationRequests

Body = dict[str, Any]


class RotationOperations:
    """Mixed into ``SecretsService``; uses its ``_mutate``, ``after_commit``,
    and the collaborators it was built with: ``knows_function`` (is a rotation function of
    that name built in or configured) and ``rotation_requests`` (who runs rotations)."""

    _mutate: Callable[..., Body]
    after_commit: Callable[[Callable[[], None]], None]
    knows_function: Callable[[str], bool]
    rotation_requests: RotationRequests

    def rotate_secret(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        token = params.client_request_token(body, required=True)
        assert token is not None
        function_arn = params.string(body, "RotationLambdaARN", max_len=2048)
        immediately = params.boolean(body, "RotateImmediately", True)
        raw_rules = body.get("RotationRules")
        if raw_rules is not None and not isinstance(raw_rules, dict):
            raise errors.SerializationError("Expected an object for RotationRules.")
        # Stored as asked for; DescribeSecret shows the service's wire form.
        rules = parse_rotation_rules(raw_rules).to_request() if raw_rules is not None else None
        if function_arn is not None and not self.knows_function(function_arn):
            raise errors.AccessDenied(errors.CANNOT_INVOKE_FUNCTION)

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            dropped = rotation.begin_rotation(
                secret,
                token,
                now,
                function_arn=function_arn,
                rules=rules,
                immediately=bool(immediately),
            )
            if immediately:
                secret.rotation_retry_until = retry_deadline(secret, now)
            refresh_next_rotation(secret, now)
            response: Body = {"ARN": secret.arn, "Name": secret.name}
            if immediately:
                response["VersionId"] = token
            return response, Edit(True, drop_values=dropped)

        response = self._mutate(secret_id, edit)
        if immediately:
            self.after_commit(lambda: self.rotation_requests.rotate(response["ARN"]))
        else:
            # As the service does: check the function with testSecret on a temporary
            # pending version, and rotate later on schedule.
            self.after_commit(lambda: self.rotation_requests.test(response["ARN"]))
        return response

    def cancel_rotate_secret(self, body: Body) -> Body:
        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            cancelled = rotation.cancel_rotation(secret, now)
            response: Body = {"ARN": secret.arn, "Name": secret.name}
            if cancelled:
                response["VersionId"] = cancelled
            return response, Edit(True)

        return self._mutate(params.secret_id(body), edit)
