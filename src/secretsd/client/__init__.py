"""secretsd client: read secrets from the agent, the Secrets Manager API or the environment,
open database connections that survive a rotation, and report on health, rotation and cost.

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
from ._errors import (
    AgentRefused,
    ClientError,
    RequestRefused,
    SecretNotFound,
    SourceUnavailable,
)
from ._reports import (
    CostEstimate,
    CostReport,
    HealthReport,
    RotationStatus,
    estimate_cost,
    rotation_status,
)
from ._usage import SourceUsage, Usage
from ._value import SecretValue

__all__ = [
    "AgentRefused",
    "ClientError",
    "CostEstimate",
    "CostReport",
    "HealthReport",
    "RequestRefused",
    "RotationStatus",
    "SecretNotFound",
    "SecretValue",
    "SecretsClient",
    "SourceUnavailable",
    "SourceUsage",
    "Usage",
    "connect_mysql",
    "connect_postgres",
    "connect_surviving_rotation",
    "estimate_cost",
    "mysql_refused",
    "postgres_refused",
    "rotation_status",
    "variable_name",
]
