"""Lambda alias routing as AWS enforces it, which moto 5.x does not.

moto stores whatever ``UpdateAlias`` sends: it never changes an alias's ``RevisionId``, ignores the
``RevisionId`` precondition, and accepts any routing configuration (unknown versions, several versions,
weights above 1, the primary version as its own additional version). AWS:

- ``RevisionId``: "Only update the alias if the revision ID matches the ID that's specified. Use this
  option to avoid modifying an alias that has changed since you last read it"; a mismatch is
  ``PreconditionFailedException`` (HTTP 412). Every change gives the alias a new revision id
  (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html).
- ``RoutingConfig.AdditionalVersionWeights``: a map of version to weight, "Valid Range: Minimum value of
  0.0. Maximum value of 1.0", key pattern ``[0-9]+``
  (https://docs.aws.amazon.com/lambda/latest/api/API_AliasRoutingConfiguration.html); "You can point an
  alias to a maximum of two Lambda function versions", both published, so at most one additional
  version, not ``$LATEST`` and not the primary itself
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html). Violations are
  ``InvalidParameterValueException``; an unknown version is ``ResourceNotFoundException``.

A concurrent writer, for tests of the ``RevisionId`` check: ``POST /_shipshape/lambda/alias-race`` with
``{"function": "api", "alias": "live", "append": " | promote"}`` makes the next ``UpdateAlias`` of that
alias that carries a ``RevisionId`` find the description changed just before it (``append`` added, a new
revision), as if someone had updated the alias between the caller's read and its update. ``GET`` lists
the writes still armed.

moto runs functions in Docker unless told otherwise; ``install`` switches it to its simple backend (no
Docker, ``Invoke`` echoes) before any function exists, as the emulator never has Docker.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException, PreconditionFailedException
from moto.awslambda.responses import LambdaResponse
from moto.core.config import default_user_config

TYPE_RESPONSE = tuple[int, dict[str, Any], str]
_VERSION = re.compile(r"^[0-9]+$")
RACES: dict[tuple[str, str], str] = {}


def _check_routing(backend: Any, function_name: str, primary: str, routing: dict[str, Any] | None) -> None:
    if not routing:
        return
    weights = routing.get("AdditionalVersionWeights") or {}
    if len(weights) > 1:
        raise InvalidParameterValueException("Number of items in AdditionalVersionWeights cannot be greater than 1")
    for version, weight in weights.items():
        if not _VERSION.match(str(version)):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{version}' at 'routingConfig.additionalVersionWeights' "
                "failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular "
                "expression pattern: [0-9]+]"
            )
        if not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{weight}' at 'routingConfig.additionalVersionWeights' "
                "failed to satisfy constraint: Member must have value less than or equal to 1.0 and greater "
                "than or equal to 0.0"
            )
        if str(version) == str(primary):
            raise InvalidParameterValueException(
                f"Invalid function version {version}. Function version {version} is already included in routing configuration."
            )
        if primary == "$LATEST":
            raise InvalidParameterValueException("$LATEST is not supported for an alias pointing to more than 1 version")
        backend.get_function(function_name, str(version))


def update_alias(self: LambdaResponse) -> TYPE_RESPONSE:
    function_name = self.path.rsplit("/")[-3]
    alias_name = self.path.rsplit("/", 2)[-1]
    params = json.loads(self.body or "{}")
    alias = self.backend.get_alias(name=alias_name, function_name=function_name)
    revision = params.get("RevisionId")
    race = RACES.pop((function_name, alias_name), None) if revision is not None else None
    if race is not None:
        alias.description = (alias.description or "") + race
        alias.revision_id = str(uuid.uuid4())
    if revision is not None and revision != alias.revision_id:
        raise PreconditionFailedException(
            "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve "
            "the latest Revision Id"
        )
    description = params.get("Description")
    if description is not None and len(description) > 256:
        # "Description ... Length Constraints: Minimum length of 0. Maximum length of 256."
        raise InvalidParameterValueException(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have "
            "length less than or equal to 256"
        )
    primary = params.get("FunctionVersion") or alias.function_version
    routing = params.get("RoutingConfig")
    _check_routing(self.backend, function_name, primary, routing if routing is not None else alias.routing_config)
    updated = self.backend.update_alias(
        name=alias_name,
        function_name=function_name,
        function_version=params.get("FunctionVersion"),
        description=params.get("Description"),
        routing_config=routing,
    )
    updated.revision_id = str(uuid.uuid4())
    return 200, {"status": 200}, json.dumps(updated.to_json())


def get_alias(self: LambdaResponse) -> TYPE_RESPONSE:
    # moto answers 201; AWS answers 200 (https://docs.aws.amazon.com/lambda/latest/api/API_GetAlias.html).
    status, headers, body = _original_get_alias(self)
    return 200, {**headers, "status": 200}, body


_original_get_alias = LambdaResponse.get_alias


def arm_race(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"function", "alias", "append"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    function, alias, append = spec.get("function"), spec.get("alias"), spec.get("append")
    if not all(isinstance(v, str) and v for v in (function, alias, append)):
        raise ValueError("function, alias and append: required strings")
    RACES[(function, alias)] = append
    return races()


def races() -> dict[str, Any]:
    return {f"{f}:{a}": append for (f, a), append in RACES.items()}


def install() -> None:
    default_user_config.setdefault("lambda", {})["use_docker"] = False
    LambdaResponse.update_alias = update_alias  # type: ignore[method-assign]
    LambdaResponse.get_alias = get_alias  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    RACES.clear()


ENDPOINTS: dict[str, dict[str, Any]] = {"/lambda/alias-race": {"GET": races, "POST": arm_race}}
