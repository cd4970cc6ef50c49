"""Which failures of a Secrets Manager call are transient: the one rule the agent and the
client share.

The AWS Secrets Manager Agent's rule, which ours follows: a timeout, an I/O failure (no
HTTP answer at all) or a 5xx is transient: the backend may answer next time, so the agent
may serve a cached value instead and the client may ask its next source. Every 4xx is a
definite answer, throttling included: a throttled account is throttled for the API too,
and a value served or read around it would hide the problem.

The rotation functions run alone on AWS Lambda and import nothing of ours; they need no
such rule (a failed step raises and the orchestrator retries the rotation).
This module imports nothing, so both the agent and the client can use it.
"""

from __future__ import annotations

# Codes that mean "too many requests": a 4xx, so definite by the rule above. Named here so
# that messages can say "throttled" rather than just "refused".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"}
)


def is_transient(status: int | None) -> bool:
    """Whether a failure with this HTTP status is transient; None: no HTTP answer at all
    (a timeout, a refused or broken connection)."""
    return status is None or status >= 500
