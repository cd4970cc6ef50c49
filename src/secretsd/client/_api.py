"""The Secrets Manager API as a source, through boto3: AWS itself or a secretsd server.

Credentials come from the usual AWS chain of the boto3 session (a caller may pass its own
session). Errors the service returns for this request are definite unless transient (5xx,
by the rule in secretsd.transient; throttling is definite); failures to reach it or to sign
(no credentials, no region) make it unavailable.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from secretsd.transient import is_transient

from ._errors import NOT_FOUND_CODE, RequestRefused, SecretNotFound, Unavailable
from ._value import SecretValue

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_SECRETS_MANAGER"


class ApiSource:
    """Reads secrets with GetSecretValue."""

    name = "api"

    def __init__(
        self,
        endpoint_url: str | None,
        env: Mapping[str, str],
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
    ) -> None:
        self.endpoint_url = endpoint_url or env.get(ENDPOINT_VARIABLE)
        self._session = session
        self._region = region_name or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._client: Any = None
        self._lock = threading.Lock()

    def fetch(
        self, secret_id: str, stage: str | None, version_id: str | None, refresh: bool
    ) -> SecretValue:
        """One secret from the API (every call is fresh, so ``refresh`` changes nothing)."""
        request: dict[str, str] = {"SecretId": secret_id}
        if version_id is not None:
            request["VersionId"] = version_id
        if stage is not None:
            request["VersionStage"] = stage
        try:
            response = self._secretsmanager().get_secret_value(**request)
        except botocore.exceptions.ClientError as exc:
            raise self._refusal(secret_id, exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            # No credentials or region, connection errors, timeouts: nothing the service said.
            raise Unavailable(type(exc).__name__) from exc
        version_id = response.get("VersionId")
        if "SecretString" in response:
            return SecretValue(response["SecretString"], version_id=version_id, source="api")
        return SecretValue(response["SecretBinary"], version_id=version_id, source="api")

    def describe(self, secret_id: str) -> dict[str, Any]:
        """DescribeSecret; raises SecretNotFound, RequestRefused or Unavailable."""
        try:
            return self._secretsmanager().describe_secret(SecretId=secret_id)
        except botocore.exceptions.ClientError as exc:
            raise self._refusal(secret_id, exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise Unavailable(type(exc).__name__) from exc

    def _refusal(self, secret_id: str, exc: botocore.exceptions.ClientError) -> Exception:
        """The exception for an error the service returned."""
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == NOT_FOUND_CODE:
            return SecretNotFound(secret_id, message, self.name)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if is_transient(status):
            return Unavailable(f"answered {status} {code}")
        return RequestRefused(secret_id, code, message, self.name)

    def _secretsmanager(self) -> Any:
        # Clients are built once: building one loads botocore's data (tenths of a second),
        # and boto3 sessions are not safe to build clients from in several threads at once.
        with self._lock:
            if self._client is None:
                session = self._session or boto3.session.Session()
                self._client = session.client(
                    "secretsmanager",
                    endpoint_url=self.endpoint_url,
                    region_name=self._region,
                    config=self._config,
                )
            return self._client
