"""Lambda alias routing rules, as the emulator extends moto."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import Emulator


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


@pytest.fixture
def fn(emulator: Emulator) -> Any:
    lam = emulator.client("lambda")
    lam.create_function(
        FunctionName="api", Runtime="provided.al2023", Role=emulator.role("api"),
        Handler="bootstrap", Code={"ZipFile": _zip()},
    )
    for _ in range(3):
        lam.update_function_code(FunctionName="api", ZipFile=_zip())
        lam.publish_version(FunctionName="api")
    lam.create_alias(FunctionName="api", Name="live", FunctionVersion="1")
    return lam


def test_revision_id_changes_and_is_a_precondition(fn: Any) -> None:
    before = fn.get_alias(FunctionName="api", Name="live")["RevisionId"]
    out = fn.update_alias(FunctionName="api", Name="live", RevisionId=before,
                          RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    assert out["RevisionId"] != before
    assert fn.get_alias(FunctionName="api", Name="live")["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    with pytest.raises(ClientError) as err:
        fn.update_alias(FunctionName="api", Name="live", RevisionId=before,
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}})
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # Cut over: the new primary with the weights cleared.
    fn.update_alias(FunctionName="api", Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}})
    alias = fn.get_alias(FunctionName="api", Name="live")
    assert alias["FunctionVersion"] == "2" and not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")


@pytest.mark.parametrize("routing, fragment", [
    ({"2": 0.1, "3": 0.1}, "cannot be greater than 1"),
    ({"2": 1.5}, "less than or equal to 1.0"),
    ({"1": 0.5}, "already included in routing configuration"),
    ({"$LATEST": 0.5}, "regular expression pattern"),
])
def test_bad_routing_is_refused(fn: Any, routing: dict, fragment: str) -> None:
    with pytest.raises(ClientError) as err:
        fn.update_alias(FunctionName="api", Name="live", RoutingConfig={"AdditionalVersionWeights": routing})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert fragment in err.value.response["Error"]["Message"]


def test_unknown_version_is_not_found(fn: Any) -> None:
    with pytest.raises(ClientError) as err:
        fn.update_alias(FunctionName="api", Name="live", RoutingConfig={"AdditionalVersionWeights": {"99": 0.1}})
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_concurrent_writer_beats_the_next_update(emulator: Emulator, fn: Any) -> None:
    read = fn.get_alias(FunctionName="api", Name="live")
    emulator.control("POST", "/lambda/alias-race", {"function": "api", "alias": "live", "append": " | promote"})
    with pytest.raises(ClientError) as err:
        fn.update_alias(FunctionName="api", Name="live", RevisionId=read["RevisionId"], Description="mine")
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"
    now = fn.get_alias(FunctionName="api", Name="live")
    assert now["Description"] == " | promote" and now["RevisionId"] != read["RevisionId"]
    # Once: the next update with the new revision goes through.
    fn.update_alias(FunctionName="api", Name="live", RevisionId=now["RevisionId"], Description="mine")
    assert emulator.control("GET", "/lambda/alias-race") == {}
