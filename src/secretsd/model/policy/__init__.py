"""IAM policies: the language, and the evaluation logic that decides a request.

Pure code: no I/O, no clock (the request brings the time). ``parse_policy`` turns a JSON
document into a ``Policy`` once; ``evaluate`` decides each request against the caller's
identity policies and the secret's resource policy.
"""

from .document import Policy, PolicyError, Principals, Statement, parse_policy
from .evaluation import Decision, RequestContext, evaluate

__all__ = [
    "Decision",
    "Policy",
    "PolicyError",
    "Principals",
    "RequestContext",
    "Statement",
    "evaluate",
    "parse_policy",
]
