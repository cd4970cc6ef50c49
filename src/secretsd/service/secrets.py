"""The Secrets Manager operations: request members in, response members out.

Theory of operation. Every operation reads the secret from storage, applies the pure rules
of ``secretsd.model`` to it, and commits the result as one atomic change guarded by the
revision it read. A concurrent writer (another request, the rotation scheduler, another
server node sharing PostgreSQL) makes the commit fail with ``Conflict``; the operation then
runs again on fresh data, so no write is ever lost or applied on a stale view.
"""

from __future__ import annotations

import contextlib
import logging
import secrets as _random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from secretsd.model import errors, kms, versions
from secretsd.model.arn import PREFIX as ARN_PREFIX
from secretsd.model.arn import SUFFIX_ALPHABET, SUFFIX_LENGTH, make_arn, parse_secret_id
from secretsd.model.identity import Caller
from secretsd.model.password import password_arguments, random_password
from secretsd.model.rotation_dates import refresh_next_rotation
from secretsd.model.secret import AWSCURRENT, Secret, UnreadableRecord
from secretsd.store.base import Change, Conflict, Storage, StoredSecret

from . import params
from .accesses import AccessRecorder
from .authorization import NOWHERE, Authorization, Origin
from .documents import DocumentCache
from .edits import Edit, secret_change
from .policy_ops import ResourcePolicyOperations
from .read_ops import ReadOperations
from .rotation_ops import RotationOperations
from .rotation_requests import RotationRequests
from .rotation_status import RotationStatusOperations

log = logging.getLogger("secretsd.service")

Body = dict[str, Any]
Handler = Callable[[Body], Body]

MAX_CONFLICT_RETRIES = 16


def conflict_backoff(attempt: int) -> None:
    """Wait a little before retrying after a conflict: a random share of a window that doubles
    with each attempt (1 ms, 2 ms, ... up to 64 ms). Two writers retrying in lockstep would
    collide again and again; spread apart, one of them gets through."""
    if attempt:
        time.sleep(_random.SystemRandom().uniform(0, min(0.064, 0.001 * 2 ** (attempt - 1))))


DAY = 86400.0


def _random_suffix() -> str:
    return "".join(_random.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


class SecretsService(
    ReadOperations, RotationOperations, ResourcePolicyOperations, RotationStatusOperations
):
    """All operations over one storage. Thread-safe as far as the storage is."""

    def __init__(
        self,
        storage: Storage,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        clock: Callable[[], float] = time.time,
        new_suffix: Callable[[], str] = _random_suffix,
        knows_function: Callable[[str], bool] = lambda name: True,
        rotation_requests: RotationRequests | None = None,
        accesses: AccessRecorder | None = None,
    ) -> None:
        self.storage = storage
        # Where reads hand their LastAccessedDate; without one, the reader writes it itself.
        self.accesses = accesses
        self.region = region
        self.account = account
        self.clock = clock
        self.new_suffix = new_suffix
        self.knows_function = knows_function
        self.rotation_requests = rotation_requests or RotationRequests()
        self._thread = threading.local()
        self._refusals: set[tuple[str, str]] = set()
        self._documents = DocumentCache()
        self.arn_prefix = f"{ARN_PREFIX}{region}:{account}:secret:"
        self.authorization = Authorization(self._find_for_request, self.arn_prefix, self.clock)
        self.operations: dict[str, Handler] = {
            "CreateSecret": self.create_secret,
            "GetSecretValue": self.get_secret_value,
            "BatchGetSecretValue": self.batch_get_secret_value,
            "DescribeSecret": self.describe_secret,
            "ListSecrets": self.list_secrets,
            "ListSecretVersionIds": self.list_secret_version_ids,
            "PutSecretValue": self.put_secret_value,
            "UpdateSecret": self.update_secret,
            "UpdateSecretVersionStage": self.update_secret_version_stage,
            "DeleteSecret": self.delete_secret,
            "RestoreSecret": self.restore_secret,
            "GetRandomPassword": self.get_random_password,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "RotateSecret": self.rotate_secret,
            "CancelRotateSecret": self.cancel_rotate_secret,
            "GetResourcePolicy": self.get_resource_policy,
            "PutResourcePolicy": self.put_resource_policy,
            "DeleteResourcePolicy": self.delete_resource_policy,
            "ValidateResourcePolicy": self.validate_resource_policy,
            # secretsd's own (see service/rotation_status.py).
            "DescribeRotation": self.describe_rotation,
        }

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this thread's writes are durable: at once, or at the end of
        the group commit this thread is in (so a rotation is never started on a write the
        scheduler cannot see yet)."""
        deferred = getattr(self._thread, "deferred", None)
        if deferred is None:
            action()
        else:
            deferred.append(action)

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[None]:
        """Writes of this thread inside the block are committed together, with one fsync,
        where the store can; actions registered with ``after_commit`` run after it."""
        deferred: list[Callable[[], None]] = []
        self._thread.deferred = deferred
        try:
            with self.storage.batch():
                yield
        finally:
            self._thread.deferred = None
        for action in deferred:
            action()

    def stamp(self) -> float:
        """The time to record on a secret or version: AWS's dates have milliseconds, and
        rounding here, where they are made, keeps stored and returned dates the same."""
        return round(self.clock(), 3)

    def call(
        self,
        operation: str,
        body: Body,
        caller: Caller | None = None,
        origin: Origin = NOWHERE,
    ) -> Body:
        """Run ``operation`` for ``caller`` coming from ``origin``, if its policies allow it.

        None is the service's own machinery and tools: like the account's root, allowed
        everything without evaluating a policy."""
        handler = self.operations.get(operation)
        if handler is None:
            raise errors.UnknownOperation(f"The operation {operation} is not supported.")
        if caller is None or caller.is_root:
            return handler(body)
        try:
            self.authorization.check(operation, body, caller, origin)
            if operation == "BatchGetSecretValue":
                return self.batch_get_secret_value(
                    body, self.authorization.check_each(caller, origin)
                )
            return handler(body)
        finally:
            self._thread.found = None

    def find(self, secret_id: str) -> Secret | None:
        """The secret ``secret_id`` names, shared (never change it), or None: for callers
        that must not tell whether it exists (authorization)."""
        try:
            return self._load(secret_id, self._decode_shared)[0]
        except (errors.ResourceNotFound, errors.DecryptionFailure):
            return None

    def _find_for_request(self, secret_id: str) -> Secret | None:
        """``find``, for the request this thread is authorizing (``call``): its operation's
        ``read`` of the same id returns what was found, without reading it again."""
        try:
            secret, revision = self._load(secret_id, self._decode_shared)
        except (errors.ResourceNotFound, errors.DecryptionFailure):
            return None
        self._thread.found = (secret_id, secret, revision)
        return secret

    # -- loading and committing -------------------------------------------------------

    def _lookup_record(self, secret_id: str) -> StoredSecret | None:
        """The stored record; raises UnreadableRecord when the store refuses it."""
        ref = parse_secret_id(secret_id)
        if ref.arn is not None and not ref.arn.startswith(self.arn_prefix):
            return None  # another region or account: not a secret of this service
        stored = self.storage.load_by_arn(ref.arn) if ref.arn else None
        return stored or self.storage.load_by_name(ref.name)

    def _lookup(self, secret_id: str) -> StoredSecret | None:
        try:
            return self._lookup_record(secret_id)
        except UnreadableRecord as exc:
            raise self._refused(exc) from None

    def decode(self, stored: StoredSecret) -> Secret:
        """The secret in ``stored``; DecryptionFailure when its record can't be read."""
        try:
            return Secret.from_document(stored.check().document, name=stored.name)
        except UnreadableRecord as exc:
            raise self._refused(exc) from None

    def _refused(self, exc: UnreadableRecord) -> errors.DecryptionFailure:
        """One unreadable record fails the requests for that secret alone, logged once."""
        key = (exc.arn or exc.secret, exc.reason)
        if key not in self._refusals:
            self._refusals.add(key)
            log.error("secret record refused", extra={"secret": exc.secret, "error": str(exc)})
        return errors.DecryptionFailure(str(exc))

    def readable_secrets(self, stored: Iterable[StoredSecret]) -> Iterator[Secret]:
        """The secrets of ``stored`` that can be read; the others are skipped (and logged
        once), so one bad record never fails a listing or the scheduler."""
        for record in stored:
            try:
                yield self.decode(record)
            except errors.DecryptionFailure:
                continue

    def find_in_any_region(self, secret_id: str) -> Secret | None:
        """The secret named or ARN'd by ``secret_id``, in whichever region or account it was
        made (a store may hold several: the server's ``--region`` can change), for tools.

        Read only: a secret past its deletion date counts as gone but is not purged here.
        """
        ref = parse_secret_id(secret_id)
        stored = self.storage.load_by_arn(ref.arn) if ref.arn else None
        stored = stored or self.storage.load_by_name(ref.name)
        if stored is None:
            return None
        if ref.arn and not (stored.arn == ref.arn or stored.arn.startswith(ref.arn + "-")):
            return None  # a partial ARN of another region or account that shares the name
        secret = self.decode(stored)
        if secret.deletion_date is not None and secret.deletion_date <= self.clock():
            return None
        return secret

    def load(self, secret_id: str) -> tuple[Secret, int]:
        """The secret and the revision read; ResourceNotFound when absent or purged. The
        secret is the caller's own, to change and commit."""
        return self._load(secret_id, self.decode)

    def read(self, secret_id: str) -> tuple[Secret, int]:
        """As ``load``, but the secret may be shared with other readers: never change it."""
        found = getattr(self._thread, "found", None)
        if found is not None and found[0] == secret_id:
            # What authorization read for this request, moments ago: reading it again
            # would cost a store read and see the same (there is no transaction between).
            self._thread.found = None
            return found[1], found[2]
        return self._load(secret_id, self._decode_shared)

    def _decode_shared(self, stored: StoredSecret) -> Secret:
        secret = self._documents.get(stored)
        if secret is None:
            secret = self._documents.put(stored, self.decode(stored))
        return secret

    def _load(self, secret_id: str, decode: Callable[[StoredSecret], Secret]) -> tuple[Secret, int]:
        now = self.clock()
        while True:
            stored = self._lookup(secret_id)
            if stored is None:
                raise errors.ResourceNotFound(errors.SECRET_NOT_FOUND)
            secret = decode(stored)
            if secret.deletion_date is None or secret.deletion_date > now:
                return secret, stored.revision
            # The recovery window has passed: the secret is gone for good.
            try:
                self.storage.commit(Change(secret.arn, secret.name, stored.revision, delete=True))
            except Conflict:
                continue
            raise errors.ResourceNotFound(errors.SECRET_NOT_FOUND)

    def edit(
        self, secret_id: str, change: Callable[[Secret, float], Edit | list[str] | None]
    ) -> Secret:
        """Apply ``change`` atomically, for the service's own machinery (rotation), which acts
        on secrets without an API request. ``change`` returns the values it adds and drops
        (an ``Edit``), or only the ids of purged versions."""

        def apply(secret: Secret, now: float) -> tuple[Body, Edit]:
            result = change(secret, now)
            if isinstance(result, Edit):
                result.changed = True
                return {"secret": secret}, result
            return {"secret": secret}, Edit(True, drop_values=list(result or []))

        return self._mutate(secret_id, apply, allow_deleted=True)["secret"]

    def _mutate(
        self,
        secret_id: str,
        edit: Callable[[Secret, float], tuple[Body, Edit]],
        *,
        allow_deleted: bool = False,
    ) -> Body:
        for attempt in range(MAX_CONFLICT_RETRIES):
            conflict_backoff(attempt)
            secret, revision = self.load(secret_id)
            if secret.scheduled_for_deletion and not allow_deleted:
                raise errors.InvalidRequest(errors.MARKED_FOR_DELETION)
            now = self.stamp()
            result, change = edit(secret, now)
            if not change.changed:
                return result
            try:
                self.storage.commit(
                    secret_change(secret, revision, change.put_values, change.drop_values)
                )
            except Conflict:
                continue
            return result
        raise errors.InternalServiceError("The secret is changing too fast; try again.")

    # -- operations ---------------------------------------------------------------------

    def create_secret(self, body: Body) -> Body:
        name = params.secret_id(body, "Name")
        made = params.new_version(body)
        description = params.string(body, "Description", max_len=2048)
        kms_key_id = params.kms_key_id(body)
        tags = params.tags(body) or []
        if len(tags) > 50:
            raise errors.InvalidParameter("A secret can have at most 50 tags.")
        if body.get("AddReplicaRegions"):
            raise errors.InvalidRequest("secretsd does not replicate secrets to other regions.")

        # Through ``load``: a secret whose recovery window has passed is purged there, and
        # its name is free again even if nothing has read it since.
        try:
            secret, _ = self.load(name)
        except errors.ResourceNotFound:
            pass
        else:
            if secret.scheduled_for_deletion:
                raise errors.InvalidRequest(errors.NAME_SCHEDULED_FOR_DELETION)
            if made is not None:
                token, value = made
                version = secret.versions.get(token)
                if (
                    version is not None
                    and version.has_value
                    and self.storage.read_value(secret.arn, token) == value
                ):
                    return {"ARN": secret.arn, "Name": secret.name, "VersionId": token}
            raise errors.ResourceExists(errors.secret_exists(name))

        now = self.stamp()
        arn = make_arn(self.region, self.account, name, self.new_suffix())
        secret = Secret(
            arn=arn,
            name=name,
            created=now,
            last_changed=now,
            description=description,
            kms_key_id=kms_key_id or None,
            tags=tags,
            tagged=bool(tags),
        )
        put_values = {}
        if made is not None:
            token, value = made
            versions.add_version(secret, token, now, None)
            put_values[token] = value
        try:
            self.storage.commit(secret_change(secret, None, put_values))
        except Conflict:
            # Another request created it first; answer as if we had come second.
            return self.create_secret(body)
        response: Body = {"ARN": arn, "Name": name}
        if made is not None:
            response["VersionId"] = made[0]
        return response

    def _put_version(
        self, secret: Secret, now: float, token: str, value: bytes, stages: list[str] | None
    ) -> Edit:
        """Add a version, or settle a repeated ClientRequestToken as the service does."""
        existing = secret.versions.get(token)
        if existing is None:
            dropped = versions.add_version(secret, token, now, stages)
            if secret.rotation_enabled and AWSCURRENT in secret.versions[token].stages:
                # A manual change of the current value counts as a rotation for the schedule.
                secret.rotation_base = now
                refresh_next_rotation(secret, now)
            return Edit(True, {token: value}, dropped)
        if not existing.has_value:
            # The rotation placeholder: createSecret fills it in.
            existing.has_value = True
            for stage in stages or []:
                versions.attach(secret, stage, token)
            secret.last_changed = now
            return Edit(True, {token: value})
        if self.storage.read_value(secret.arn, token) != value:
            raise errors.ResourceExists(errors.token_in_use(token, secret.arn))
        return Edit()

    def put_secret_value(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        value = params.secret_value(body)
        token = params.client_request_token(body, required=True)
        assert token is not None
        params.rotation_token(body)
        if value is None:
            raise errors.InvalidParameter("You must provide either SecretString or SecretBinary.")
        stages = params.string_list(
            body, "VersionStages", min_items=1, max_items=20, item_len=(1, 256)
        )

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            change = self._put_version(secret, now, token, value, stages)
            return {
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": token,
                "VersionStages": list(secret.versions[token].stages),
            }, change

        return self._mutate(secret_id, edit)

    def update_secret(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        made = params.new_version(body)
        description = params.string(body, "Description", max_len=2048)
        kms_key_id = params.kms_key_id(body)

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            change = Edit()
            response: Body = {"ARN": secret.arn, "Name": secret.name}
            if description is not None and description != secret.description:
                secret.description = description
                change.changed = True
            if kms_key_id is not None and (kms_key_id or None) != secret.kms_key_id:
                # An empty key id returns the secret to the default key.
                kms.change_key(secret, kms_key_id or None)
                change.changed = True
            if made is not None:
                token, value = made
                added = self._put_version(secret, now, token, value, None)
                change.changed |= added.changed
                change.put_values.update(added.put_values)
                change.drop_values.extend(added.drop_values)
                response["VersionId"] = token
            if change.changed:
                secret.last_changed = now
            return response, change

        return self._mutate(secret_id, edit)

    def update_secret_version_stage(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        stage = params.required_string(body, "VersionStage", max_len=256)
        remove_from = params.string(body, "RemoveFromVersionId", min_len=32, max_len=64)
        move_to = params.string(body, "MoveToVersionId", min_len=32, max_len=64)

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            versions.update_version_stage(secret, stage, remove_from, move_to, now)
            return {"ARN": secret.arn, "Name": secret.name}, Edit(True)

        return self._mutate(secret_id, edit)

    def delete_secret(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        window = params.integer(body, "RecoveryWindowInDays")
        force = params.boolean(body, "ForceDeleteWithoutRecovery", False)
        if force and window is not None:
            raise errors.InvalidParameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        if window is not None and not 7 <= window <= 30:
            raise errors.InvalidParameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        if force:
            return self._force_delete(secret_id)

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            if secret.scheduled_for_deletion:
                raise errors.InvalidRequest(errors.MARKED_FOR_DELETION)
            secret.deleted_date = now
            # Rounded again: adding days to a millisecond can leave float noise behind.
            secret.deletion_date = round(now + (window or 30) * DAY, 3)
            response = {
                "ARN": secret.arn,
                "Name": secret.name,
                "DeletionDate": secret.deletion_date,
            }
            return response, Edit(True)

        return self._mutate(secret_id, edit, allow_deleted=True)

    def _force_delete(self, secret_id: str) -> Body:
        now = self.stamp()
        for attempt in range(MAX_CONFLICT_RETRIES):
            conflict_backoff(attempt)
            try:
                stored = self._lookup_record(secret_id)
            except UnreadableRecord as exc:
                if exc.arn is None:
                    raise self._refused(exc) from None
                # A record that can't be read can still be removed for good: the way out
                # for an operator facing a tampered record.
                self.storage.commit(Change(exc.arn, exc.secret, None, delete=True))
                log.warning("unreadable secret record deleted", extra={"secret": exc.secret})
                return {"ARN": exc.arn, "Name": exc.secret, "DeletionDate": now}
            if stored is None:
                # Not an error on the real service: the secret is gone either way.
                ref = parse_secret_id(secret_id)
                return {"ARN": ref.arn or "", "Name": ref.name, "DeletionDate": now}
            try:
                self.storage.commit(Change(stored.arn, stored.name, stored.revision, delete=True))
            except Conflict:
                continue
            return {"ARN": stored.arn, "Name": stored.name, "DeletionDate": now}
        raise errors.InternalServiceError("The secret is changing too fast; try again.")

    def restore_secret(self, body: Body) -> Body:
        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            changed = secret.scheduled_for_deletion
            secret.deleted_date = secret.deletion_date = None
            return {"ARN": secret.arn, "Name": secret.name}, Edit(changed)

        return self._mutate(params.secret_id(body), edit, allow_deleted=True)

    def get_random_password(self, body: Body) -> Body:
        return {"RandomPassword": random_password(**password_arguments(body))}

    def tag_resource(self, body: Body) -> Body:
        new_tags = params.tags(body)
        if new_tags is None:
            raise errors.InvalidParameter("You must provide a value for the Tags parameter.")

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            merged = {t["Key"]: t["Value"] for t in secret.tags}
            merged.update({t["Key"]: t["Value"] for t in new_tags})
            if len(merged) > 50:
                raise errors.LimitExceeded("A secret can have at most 50 tags.")
            secret.tags = [{"Key": k, "Value": v} for k, v in merged.items()]
            secret.tagged = secret.tagged or bool(secret.tags)
            return {}, Edit(True)

        return self._mutate(params.secret_id(body), edit)

    def untag_resource(self, body: Body) -> Body:
        keys = params.string_list(body, "TagKeys", item_len=(1, 128))
        if keys is None:
            raise errors.InvalidParameter("You must provide a value for the TagKeys parameter.")

        def edit(secret: Secret, now: float) -> tuple[Body, Edit]:
            secret.tags = [t for t in secret.tags if t["Key"] not in keys]
            return {}, Edit(True)

        return self._mutate(params.secret_id(body), edit)
