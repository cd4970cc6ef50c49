"""secretsd client: read secrets from the agent, the Secrets Manager API or the environment,
and open database connections that survive a rotation.

Every public name is here; the modules behind them are private.
"""

from ._client import SecretsClient
from ._db import (
    connect_mysql,
    connect_postgres,
    connect_surviving_rotation,
    mysql_refused,
    postgres_refused,
)
from ._environ import variable_name
from ._errors import ClientError, RequestRefused, SecretNotFound, SourceUnavailable
from ._value import SecretValue

__all__ = [
    "ClientError",
    "RequestRefused",
    "SecretNotFound",
    "SecretValue",
    "SecretsClient",
    "SourceUnavailable",
    "connect_mysql",
    "connect_postgres",
    "connect_surviving_rotation",
    "mysql_refused",
    "postgres_refused",
    "variable_name",
]
