"""Execution roles for tests that use no IAM client.

Lambda, in AWS and in moto, refuses a function whose execution role does not exist, so a test that
creates a function needs a role first: ``POST /_shipshape/iam/role {"name": "..."}`` -> ``{"arn": "..."}``
creates it in the default account, trusted by ``lambda.amazonaws.com``, or returns the one of that name.
"""

from __future__ import annotations

import json
import re
from typing import Any


def create_role(spec: dict[str, Any]) -> dict[str, Any]:
    from moto.iam.models import iam_backends

    name = spec.get("name")
    if not isinstance(name, str) or not re.match(r"^[\w+=,.@-]{1,64}$", name):
        raise ValueError("name: a role name (letters, digits and +=,.@_-, up to 64)")
    backend = iam_backends["123456789012"]["aws"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    try:
        role = backend.get_role(name)
    except Exception:
        role = backend.create_role(name, trust, "/", None, "", [], None)
    return {"arn": role.arn}


def install() -> None:
    """Nothing to patch."""


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS = {"/iam/role": {"POST": create_role}}
