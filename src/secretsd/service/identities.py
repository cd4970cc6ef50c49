"""IAM users, access keys and inline policies, and the access keys they sign with.

Theory of operation. Every IAM operation reads the user's document (``model.iam.User``),
changes it, and commits it guarded by the revision read, retrying on ``Conflict`` as the
secret operations do; the secret half of a new access key goes into the same commit, and
the store seals it.

``authenticate`` is what SigV4 asks for every request signed by a key that is not the
root's: the key's secret and the ``Caller`` it stands for. It reads the key and its user's
current document from the store on every request (one indexed read), so a key made
inactive or deleted, or a policy changed, takes effect on the next request on every node.
The work of turning a document into a Caller (parsing its policies) is remembered, per key,
for as long as the store hands back the very same document. Where the store can tell
cheaply that nothing in it changed (SQLite's change marker, which moves on any commit by
any connection), the read itself is skipped until something did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from secretsd.model import errors, iam
from secretsd.model.identity import Caller
from secretsd.model.policy import Policy, PolicyError, RequestContext, evaluate, parse_policy
from secretsd.model.secret import UnreadableRecord
from secretsd.store.base import Conflict, Storage, StoredUser, UserChange

from .sessions import SessionKeys

log = logging.getLogger("secretsd.iam")

Body = dict[str, Any]
MAX_RETRIES = 16
# Operations that act on the signing user when they name none.
_ON_THE_CALLER = frozenset(
    {
        "GetUser",
        "CreateAccessKey",
        "ListAccessKeys",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "ListUserTags",
    }
)


def parse_identity_policy(text: str) -> Policy:
    """A user's inline policy, or IAM's MalformedPolicyDocument error."""
    try:
        return parse_policy(text, kind="identity")
    except PolicyError as exc:
        raise errors.MalformedIamPolicy(exc.message) from None


@dataclass(frozen=True, slots=True)
class _Known:
    """A key's answer, valid while the store returns exactly ``document`` for its user."""

    revision: int
    document: bytes
    # The key's secret access key: never in a repr (a log line, a traceback's locals).
    secret: str = field(repr=False)
    caller: Caller


class IdentityService:
    """The IAM operations over one storage, and authentication of IAM users' keys."""

    def __init__(
        self,
        storage: Storage,
        *,
        account: str = "123456789012",
        clock: Callable[[], float] = time.time,
        sessions: SessionKeys | None = None,
    ) -> None:
        self.storage = storage
        self.account = account
        self.clock = clock
        self.sessions = sessions or SessionKeys(account)
        self._known: dict[str, _Known] = {}
        # Per key, the store's change marker and the answer read under it (stores that
        # have markers: SQLite); see ``Storage.change_marker``.
        self._fresh: dict[str, tuple[object, tuple[str, Caller] | None]] = {}
        self._known_lock = threading.Lock()
        self.operations: dict[str, Callable[[Body], Body]] = {
            "CreateUser": self.create_user,
            "GetUser": self.get_user,
            "ListUsers": self.list_users,
            "DeleteUser": self.delete_user,
            "TagUser": self.tag_user,
            "UntagUser": self.untag_user,
            "ListUserTags": self.list_user_tags,
            "CreateAccessKey": self.create_access_key,
            "ListAccessKeys": self.list_access_keys,
            "UpdateAccessKey": self.update_access_key,
            "DeleteAccessKey": self.delete_access_key,
            "PutUserPolicy": self.put_user_policy,
            "GetUserPolicy": self.get_user_policy,
            "ListUserPolicies": self.list_user_policies,
            "DeleteUserPolicy": self.delete_user_policy,
        }

    # -- dispatch and authorization -------------------------------------------------------

    def call(self, operation: str, body: Body, caller: Caller) -> Body:
        handler = self.operations.get(operation)
        if handler is None:
            raise errors.InvalidAction(
                f"Could not find operation {operation} for version 2010-05-08"
            )
        if operation in _ON_THE_CALLER and not body.get("UserName") and caller.type == "IAMUser":
            # Without a UserName, IAM acts on the user whose key signed the request.
            body = {**body, "UserName": caller.user_name}
        if not caller.is_root:
            self.authorize(caller, operation, body)
        return handler(body)

    def authorize(self, caller: Caller, operation: str, body: Body) -> None:
        action = f"iam:{operation}"
        # Operations on a user name it; ListUsers acts on the account's users.
        name = body.get("UserName")
        if isinstance(name, str) and name:
            user = self._find(name)
            path = user.path if user is not None else "/"
            resource = iam.user_arn(self.account, path, user.name if user else name)
        elif operation in _ON_THE_CALLER:
            resource = caller.arn
        else:
            resource = f"arn:aws:iam::{self.account}:user/"
        keys = {"aws:CurrentTime": datetime.fromtimestamp(self.clock(), UTC)}
        context = RequestContext(action, resource, caller, keys)
        policies = [p for p in caller.policies if isinstance(p, Policy)]
        decision = evaluate(context, policies, None)
        if not decision.allowed:
            reason = decision.denied_by or "no-allow"
            raise errors.IamAccessDenied(
                errors.not_authorized(caller.arn, action, resource, reason)
            )

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, access_key_id: str) -> tuple[str, Caller] | None:
        """The secret of an active key and who it stands for; None for any other key."""
        session = self.sessions.lookup(access_key_id)
        if session is not None:
            return session
        # Taken before the read: a change committed after it moves the marker.
        marker = self.storage.change_marker()
        if marker is not None:
            fresh = self._fresh.get(access_key_id)
            if fresh is not None and fresh[0] == marker:
                return fresh[1]
        answer = self._read_key(access_key_id)
        if marker is not None:
            with self._known_lock:
                if len(self._fresh) > 4096:
                    self._fresh.clear()
                self._fresh[access_key_id] = (marker, answer)
        return answer

    def _read_key(self, access_key_id: str) -> tuple[str, Caller] | None:
        try:
            found = self.storage.load_access_key(access_key_id)
        except (UnreadableRecord, errors.DecryptionFailure) as exc:
            log.error("access key %s refused: %s", access_key_id, exc)
            return None
        if found is None:
            return None
        stored, secret = found
        known = self._known.get(access_key_id)
        if known is None or known.revision != stored.revision or known.document != stored.document:
            known = self._learn(access_key_id, stored, secret.decode())
            if known is None:
                return None
        return known.secret, known.caller

    def _learn(self, access_key_id: str, stored: StoredUser, secret: str) -> _Known | None:
        user = iam.User.from_document(stored.document)
        info = user.keys.get(access_key_id)
        if info is None or info.status != iam.ACTIVE:
            return None
        try:
            policies = tuple(parse_identity_policy(text) for text in user.policies.values())
        except errors.SecretsManagerError as exc:
            # Refused when stored, so this is a policy this release reads differently: better
            # no access than access without one of the user's policies (it may deny).
            log.error("user %s has a policy that no longer parses: %s", user.name, exc)
            return None
        caller = Caller(
            account_id=self.account,
            arn=user.arn(self.account),
            user_id=user.user_id,
            access_key_id=access_key_id,
            user_name=user.name,
            tags=dict(user.tags),
            policies=policies,
        )
        known = _Known(stored.revision, stored.document, secret, caller)
        with self._known_lock:
            if len(self._known) > 4096:
                self._known.clear()
            self._known[access_key_id] = known
        return known

    # -- reading and committing users -----------------------------------------------------

    def _find(self, name: str) -> iam.User | None:
        stored = self.storage.load_user(name)
        return None if stored is None else iam.User.from_document(stored.document)

    def _load(self, name: str) -> tuple[iam.User, int]:
        stored = self.storage.load_user(name)
        if stored is None:
            raise iam.no_such_user(name)
        return iam.User.from_document(stored.document), stored.revision

    def _change(
        self,
        name: str,
        edit: Callable[[iam.User, int, float], tuple[Body, UserChange | None]],
    ) -> Body:
        for _ in range(MAX_RETRIES):
            user, revision = self._load(name)
            result, change = edit(user, revision, self.clock())
            if change is None:
                return result
            try:
                self.storage.commit_user(change)
            except Conflict:
                continue
            return result
        raise errors.InternalServiceError("The user is changing too fast; try again.")

    def _user_entry(self, user: iam.User, *, tags: bool = True) -> Body:
        entry: Body = {
            "Path": user.path,
            "UserName": user.name,
            "UserId": user.user_id,
            "Arn": user.arn(self.account),
            "CreateDate": user.created,
        }
        if tags and user.tags:
            entry["Tags"] = _tag_list(user.tags)
        return entry

    # -- users ----------------------------------------------------------------------------

    def create_user(self, body: Body) -> Body:
        name = iam.check_name("userName", _required(body, "UserName", "userName"), 64)
        path = iam.check_path(_string(body, "Path") or "/")
        tags = _tags(body)
        user = iam.User(name, iam.new_user_id(), path, self.clock())
        user.set_tags(tags)
        try:
            self.storage.commit_user(UserChange(name, None, user.to_document()))
        except Conflict:
            raise errors.EntityAlreadyExists(f"User with name {name} already exists.") from None
        return {"User": self._user_entry(user)}

    def get_user(self, body: Body) -> Body:
        name = _string(body, "UserName")
        if name is None:
            raise errors.IamValidationError(
                "Must specify userName when calling with non-User credentials"
            )
        user, _ = self._load(name)
        return {"User": self._user_entry(user)}

    def list_users(self, body: Body) -> Body:
        prefix = _string(body, "PathPrefix") or "/"
        users = [iam.User.from_document(stored.document) for stored in self.storage.list_users()]
        chosen = [u for u in users if u.path.startswith(prefix)]
        page, marker = _page(chosen, lambda u: u.name.lower(), body)
        return {"Users": [self._user_entry(u, tags=False) for u in page], **marker}

    def delete_user(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.check_deletable()
            return {}, UserChange(user.name, revision, delete=True)

        return self._change(name, edit)

    def tag_user(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        tags = _tags(body)

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.set_tags(tags)
            return {}, UserChange(user.name, revision, user.to_document())

        return self._change(name, edit)

    def untag_user(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        keys = _string_list(body, "TagKeys")

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.tags = {k: v for k, v in user.tags.items() if k not in keys}
            return {}, UserChange(user.name, revision, user.to_document())

        return self._change(name, edit)

    def list_user_tags(self, body: Body) -> Body:
        user, _ = self._load(_required(body, "UserName", "userName"))
        page, marker = _page(list(user.tags.items()), lambda item: item[0], body)
        return {"Tags": _tag_list(dict(page)), **marker}

    # -- access keys ----------------------------------------------------------------------

    def create_access_key(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        key_id, secret = iam.new_access_key()

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.add_key(key_id, now)
            entry = {
                "UserName": user.name,
                "AccessKeyId": key_id,
                "Status": iam.ACTIVE,
                "SecretAccessKey": secret,
                "CreateDate": now,
            }
            change = UserChange(
                user.name, revision, user.to_document(), put_keys={key_id: secret.encode()}
            )
            return {"AccessKey": entry}, change

        return self._change(name, edit)

    def list_access_keys(self, body: Body) -> Body:
        user, _ = self._load(_required(body, "UserName", "userName"))
        entries = [
            {
                "UserName": user.name,
                "AccessKeyId": key_id,
                "Status": info.status,
                "CreateDate": info.created,
            }
            for key_id, info in user.keys.items()
        ]
        page, marker = _page(entries, lambda e: e["AccessKeyId"], body)
        return {"AccessKeyMetadata": page, **marker}

    def update_access_key(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        key_id = _required(body, "AccessKeyId", "accessKeyId")
        status = _required(body, "Status", "status")
        if status not in iam.STATUSES:
            raise iam.validation(
                "status", status, "Member must satisfy enum value set: [Active, Inactive]"
            )

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange | None]:
            info = user.key(key_id)
            if info.status == status:
                return {}, None
            info.status = status
            return {}, UserChange(user.name, revision, user.to_document())

        return self._change(name, edit)

    def delete_access_key(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        key_id = _required(body, "AccessKeyId", "accessKeyId")

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.key(key_id)
            del user.keys[key_id]
            change = UserChange(user.name, revision, user.to_document(), drop_keys=[key_id])
            return {}, change

        return self._change(name, edit)

    # -- inline policies ------------------------------------------------------------------

    def put_user_policy(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        policy_name = iam.check_name("policyName", _required(body, "PolicyName", "policyName"), 128)
        document = _required(body, "PolicyDocument", "policyDocument")
        parse_identity_policy(document)

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.put_policy(policy_name, document)
            return {}, UserChange(user.name, revision, user.to_document())

        return self._change(name, edit)

    def get_user_policy(self, body: Body) -> Body:
        user, _ = self._load(_required(body, "UserName", "userName"))
        policy_name = _required(body, "PolicyName", "policyName")
        return {
            "UserName": user.name,
            "PolicyName": policy_name,
            "PolicyDocument": user.policy(policy_name),
        }

    def list_user_policies(self, body: Body) -> Body:
        user, _ = self._load(_required(body, "UserName", "userName"))
        page, marker = _page(sorted(user.policies), lambda n: n, body)
        return {"PolicyNames": page, **marker}

    def delete_user_policy(self, body: Body) -> Body:
        name = _required(body, "UserName", "userName")
        policy_name = _required(body, "PolicyName", "policyName")

        def edit(user: iam.User, revision: int, now: float) -> tuple[Body, UserChange]:
            user.policy(policy_name)
            del user.policies[policy_name]
            return {}, UserChange(user.name, revision, user.to_document())

        return self._change(name, edit)


def _string(body: Body, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.IamValidationError(f"Expected a string for {name}.")
    return value


def _required(body: Body, name: str, member: str) -> str:
    value = _string(body, name)
    if value is None or value == "":
        raise errors.IamValidationError(
            f"1 validation error detected: Value null at '{member}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return value


def _string_list(body: Body, name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.IamValidationError(f"Expected a list of strings for {name}.")
    return value


def _tags(body: Body) -> dict[str, str]:
    value = body.get("Tags") or []
    if not isinstance(value, list):
        raise errors.IamValidationError("Expected a list of tags.")
    tags: dict[str, str] = {}
    for tag in value:
        if not isinstance(tag, Mapping):
            raise errors.IamValidationError("Expected a list of tags.")
        key, tag_value = tag.get("Key"), tag.get("Value", "")
        if not isinstance(key, str) or not isinstance(tag_value, str):
            raise errors.IamValidationError("Each tag needs a Key and a Value.")
        iam.check_tag(key, tag_value)
        tags[key] = tag_value
    return tags


def _tag_list(tags: Mapping[str, str]) -> list[Body]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _page(items: list, key: Callable[[Any], str], body: Body) -> tuple[list, Body]:
    """One page of ``items`` (in order of ``key``) after the ``Marker``, at most ``MaxItems``
    (100); IsTruncated and the next Marker as IAM returns them."""
    marker = _string(body, "Marker")
    raw_max = body.get("MaxItems")
    try:
        limit = 100 if raw_max is None else int(raw_max)
    except (TypeError, ValueError):
        raise errors.IamValidationError("MaxItems must be a number.") from None
    if not 1 <= limit <= 1000:
        raise iam.validation("maxItems", raw_max, "Member must have value between 1 and 1000")
    if marker is not None:
        items = [item for item in items if key(item) > marker]
    page = items[:limit]
    if len(items) > limit:
        return page, {"IsTruncated": True, "Marker": key(page[-1])}
    return page, {"IsTruncated": False}
