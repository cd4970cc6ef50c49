"""The reading operations: GetSecretValue, BatchGetSecretValue, DescribeSecret, the lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from secretsd.model import errors, listing, versions
from secretsd.model.secret import Secret
from secretsd.store.base import ListQuery, Storage, StoredSecret

from . import params
from .accesses import AccessRecorder, record_access
from .render import describe, list_entry, secret_value_entry, version_entry

Body = dict[str, Any]
DAY = 86400.0


class ReadOperations:
    """Mixed into ``SecretsService``; uses its ``storage``, ``clock``, ``accesses`` and
    ``read``.

    Secrets come from ``read``, shared with other readers: nothing here changes one.
    """

    storage: Storage
    clock: Callable[[], float]
    accesses: AccessRecorder | None
    read: Callable[[str], tuple[Secret, int]]
    readable_secrets: Callable[[Iterable[StoredSecret]], Iterator[Secret]]
    decode: Callable[[StoredSecret], Secret]
    find: Callable[[str], Secret | None]

    def get_secret_value(self, body: Body) -> Body:
        secret_id = params.secret_id(body)
        version_id = params.string(body, "VersionId", min_len=32, max_len=64)
        stage = params.string(body, "VersionStage", min_len=1, max_len=256)
        secret, revision = self.read(secret_id)
        return self._read_value(secret, revision, version_id, stage)

    def _read_value(
        self, secret: Secret, revision: int, version_id: str | None, stage: str | None
    ) -> Body:
        if secret.scheduled_for_deletion:
            raise errors.InvalidRequest(errors.MARKED_FOR_DELETION)
        version = versions.select_version(secret, version_id, stage)
        value = self.storage.read_value(secret.arn, version.version_id)
        if value is None:
            raise errors.ResourceNotFound(errors.value_not_found_for_version(version.version_id))
        self._touch(secret, version.version_id)
        return secret_value_entry(secret, version, value)

    def _touch(self, secret: Secret, version_id: str) -> None:
        """Keep LastAccessedDate (day resolution): at most one write per secret per day, and
        not by the reader (``accesses``)."""
        today = self.clock() // DAY * DAY
        version = secret.versions[version_id]
        if secret.last_accessed == today and version.last_accessed == today:
            return
        if self.accesses is None:
            record_access(self.storage, secret.arn, {version_id: today})
        else:
            self.accesses.note(secret.arn, version_id, today)

    def batch_get_secret_value(
        self, body: Body, check: Callable[[str, Secret | None], None] | None = None
    ) -> Body:
        """``check`` (a caller's GetSecretValue permission) runs for each secret before it is
        read; a refusal is reported in Errors like any other failure."""
        ids = params.string_list(
            body, "SecretIdList", min_items=1, max_items=20, item_len=(1, 2048)
        )
        filters = listing.parse_filters(body.get("Filters"))
        max_results = params.integer(body, "MaxResults", low=1, high=20)
        token = params.string(body, "NextToken")
        if ids is not None and body.get("Filters"):
            raise errors.InvalidParameter("Specify either SecretIdList or Filters, not both.")
        if ids is None and not body.get("Filters"):
            raise errors.InvalidParameter("Specify either SecretIdList or Filters.")
        values, failures = [], []
        if ids is not None:
            if max_results is not None or token is not None:
                raise errors.InvalidParameter(
                    "MaxResults and NextToken go with Filters, not with SecretIdList."
                )
            for secret_id in ids:
                try:
                    if check is not None:
                        check(secret_id, self.find(secret_id))
                    secret, revision = self.read(secret_id)
                    values.append(self._read_value(secret, revision, None, None))
                except errors.SecretsManagerError as exc:
                    failures.append(
                        {"SecretId": secret_id, "ErrorCode": exc.code, "Message": exc.message}
                    )
            return {"SecretValues": values, "Errors": failures}
        query = ListQuery(
            now=self.clock(),
            filters=tuple(filters),
            after=listing.secret_after(token, "created-date"),
            limit=max_results or 20,
        )
        page, after = self.storage.list_page(query)
        for stored in page:
            try:
                secret = self.decode(stored)
                if check is not None:
                    check(secret.arn, secret)
                values.append(self._read_value(secret, stored.revision, None, None))
            except errors.SecretsManagerError as exc:
                failures.append(
                    {"SecretId": stored.arn, "ErrorCode": exc.code, "Message": exc.message}
                )
        response: Body = {"SecretValues": values, "Errors": failures}
        if after is not None:
            response["NextToken"] = listing.encode_token(after)
        return response

    def describe_secret(self, body: Body) -> Body:
        secret, _ = self.read(params.secret_id(body))
        return describe(secret)

    def rotation_candidates(self, now: float) -> list[Secret]:
        """The secrets whose rotation may need the scheduler at ``now`` (a superset of those
        its ``plan`` acts on), read from the store's index instead of every document."""
        return list(self.readable_secrets(self.storage.rotation_candidates(now)))

    def list_secrets(self, body: Body) -> Body:
        include_deleted = params.boolean(body, "IncludePlannedDeletion", False)
        max_results = params.integer(body, "MaxResults", low=1, high=100)
        token = params.string(body, "NextToken")
        filters = listing.parse_filters(body.get("Filters"))
        sort_by = listing.check_sort(params.string(body, "SortBy"))
        descending = listing.check_order(params.string(body, "SortOrder"))
        query = ListQuery(
            now=self.clock(),
            filters=tuple(filters),
            sort_by=sort_by,
            descending=descending,
            include_planned_deletion=bool(include_deleted),
            after=listing.secret_after(token, sort_by),
            limit=max_results or 100,
        )
        page, after = self.storage.list_page(query)
        response: Body = {"SecretList": [list_entry(s) for s in self.readable_secrets(page)]}
        if after is not None:
            response["NextToken"] = listing.encode_token(after)
        return response

    def list_secret_version_ids(self, body: Body) -> Body:
        secret, _ = self.read(params.secret_id(body))
        include_deprecated = params.boolean(body, "IncludeDeprecated", False)
        max_results = params.integer(body, "MaxResults", low=1, high=100)
        token = params.string(body, "NextToken")
        # The rotation placeholder has no value yet and is not listed.
        chosen = [
            v for v in secret.versions.values() if v.has_value and (include_deprecated or v.stages)
        ]
        chunk, following = listing.page(
            chosen,
            lambda v: (v.created, v.version_id),
            descending=True,
            token=token,
            max_results=max_results,
        )
        response: Body = {
            "Versions": [version_entry(secret, v) for v in chunk],
            "ARN": secret.arn,
            "Name": secret.name,
        }
        if following:
            response["NextToken"] = following
        return response
