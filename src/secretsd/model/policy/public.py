"""Whether a resource policy gives broad access: what BlockPublicPolicy refuses.

AWS asks an automated reasoner (Zelkova) whether anyone outside a bounded set of principals
could be allowed. This is the syntactic core of that question: an Allow statement is broad
when its principal is a wildcard (``*``, ``{"AWS": "*"}``) or a NotPrincipal (everyone but a
few), unless one of its conditions pins the caller down: a positive test, without
``IfExists`` or ``ForAllValues`` (both hold when the key is missing), of a key that names the
caller's account, organisation, identity or network, against values that are not bare
wildcards.
"""

from __future__ import annotations

from .conditions import Clause
from .document import Policy, Statement

# Keys whose positive test limits who can make the request.
_PINNING_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:userid",
        "aws:username",
    }
)


def grants_broad_access(policy: Policy) -> bool:
    return any(_broad(statement) for statement in policy.statements)


def broad_statements(policy: Policy) -> list[Statement]:
    return [statement for statement in policy.statements if _broad(statement)]


def _broad(statement: Statement) -> bool:
    if statement.effect != "Allow":
        return False
    wildcard = statement.not_principal is not None or (
        statement.principal is not None and statement.principal.anyone
    )
    return wildcard and not any(_pins(clause) for clause in statement.conditions)


def _pins(clause: Clause) -> bool:
    if clause.key not in _PINNING_KEYS or clause.operator.match is None:
        return False
    if clause.operator.negated or clause.if_exists or clause.qualifier == "ForAllValues":
        return False
    return all(value.source.strip("*?") != "" for value in clause.values)
