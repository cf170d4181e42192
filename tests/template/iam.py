"""A small IAM policy evaluator: enough of IAM's rules (explicit deny wins, then any allow; Action and
Resource/NotResource wildcards; ARNs matched part by part; the condition operators the template uses,
with IAM's rule for a missing key) to ask of the rendered policies "may this role make this request?"."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.action, self.resource, tuple(sorted(self.context.items()))))


def _glob(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.I) is not None


def _arn_parts(arn: str) -> list[str] | None:
    parts = arn.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def arn_like(pattern: str, arn: str) -> bool:
    """IAM's ARN matching: each of the six colon-separated parts on its own, with * and ? wildcards."""
    if pattern == "*":
        return True
    p, a = _arn_parts(pattern), _arn_parts(arn)
    if p is None or a is None:
        return False
    return all(_glob(x, y) for x, y in zip(p, a, strict=True))


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _condition(block: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in block.items():
        for key, wanted in keys.items():
            wanted = [str(w) for w in _as_list(wanted)]
            have = context.get(key)
            negated = "Not" in operator
            if have is None:
                if not negated:
                    return False
                continue
            if operator in ("ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"):
                hit = any(arn_like(w, have) for w in wanted)
            elif operator in ("StringLike", "StringNotLike"):
                hit = any(_glob(w, have) for w in wanted)
            elif operator in ("StringEquals", "StringNotEquals", "Bool"):
                hit = have in wanted
            else:
                raise NotImplementedError(operator)
            if hit == negated:
                return False
    return True


def _matches(statement: dict[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_glob(a, request.action, case=False) for a in _as_list(statement["Action"])):
            return False
    elif any(_glob(a, request.action, case=False) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(arn_like(r, request.resource) or r == request.resource for r in _as_list(statement["Resource"])):
            return False
    elif any(arn_like(r, request.resource) for r in _as_list(statement["NotResource"])):
        return False
    return _condition(statement.get("Condition", {}), request.context)


def allowed(documents: list[dict[str, Any]], request: Request) -> bool:
    statements = [s for d in documents for s in _as_list(d["Statement"])]
    if any(s["Effect"] == "Deny" and _matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request) for s in statements)


def allowed_actions(documents: list[dict[str, Any]]) -> set[str]:
    """Every action some Allow statement names (no wildcards expected)."""
    return {
        a.lower()
        for d in documents
        for s in _as_list(d["Statement"])
        if s["Effect"] == "Allow"
        for a in _as_list(s.get("Action", []))
    }
