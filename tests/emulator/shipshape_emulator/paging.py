"""Pages and paging tokens as AWS hands them out, for the list and describe calls moto answers in one piece.

A token is opaque to the caller and names the request it belongs to: AWS refuses a ``nextToken`` sent with
other parameters than the call that produced it, so a client that loses track of its parameters between
pages fails here as it would there. Each service refuses in its own words (ECS:
``InvalidParameterException``; Auto Scaling: ``InvalidNextToken``), so the caller says how to refuse.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


def encode_token(offset: int, query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": query}, sort_keys=True).encode()).decode()


def decode_token(token: str, query: dict[str, Any], refuse: Callable[[str], Exception]) -> int:
    """The offset a token continues from; ``refuse(message)`` is raised for a token that is not one of ours
    or that was produced by a request with other parameters."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise refuse("The nextToken is not valid.")
    if offset < 0 or json.dumps(data.get("q"), sort_keys=True) != json.dumps(query, sort_keys=True):
        raise refuse("The nextToken does not match the request parameters.")
    return offset


def page(
    items: Sequence[T], limit: int, token: str | None, query: dict[str, Any], refuse: Callable[[str], Exception]
) -> tuple[list[T], str | None]:
    """One page of ``items`` (``limit`` at most, from where ``token`` left off) and the token for the rest."""
    start = decode_token(token, query, refuse) if token else 0
    chunk = list(items[start : start + limit])
    rest = encode_token(start + limit, query) if start + limit < len(items) else None
    return chunk, rest
