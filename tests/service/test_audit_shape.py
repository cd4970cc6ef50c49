"""Audit records as CloudTrail shapes them, without a server: identities, outcomes, and no
secret value, password or key in any record."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.model.audit_chain import canonical
from secretsd.model.identity import Caller, root_caller
from secretsd.model.request import RequestFacts
from secretsd.service.audit import ApiCall, CallRenderer, shape_call
from secretsd.service.audit_trail import AuditTrail, AuditUnavailable
from secretsd.store.audit import AuditLog, AuditWriteError

ACCOUNT = "111122223333"
ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db/app-AbCdEf"
MARKER = "MARKER-7f3a9c"
CONTEXT = RequestFacts("req-1", "192.0.2.7", "Boto3/1.35 test", secure_transport=True)
USER = Caller(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:user/app",
    user_id="AIDAEXAMPLEUSER",
    access_key_id="AKIAEXAMPLEUSERKEY",
    user_name="app",
)


def shape(call: ApiCall) -> dict:
    return shape_call(call, region="us-east-1", account=ACCOUNT, at=1_700_000_000.5, event_id="e")


def test_a_get_secret_value_is_recorded_as_cloudtrail_does_without_its_value():
    call = ApiCall(
        "secretsmanager",
        "GetSecretValue",
        USER,
        CONTEXT,
        True,
        {"SecretId": "db/app", "VersionStage": "AWSCURRENT"},
        {"ARN": ARN, "Name": "db/app", "SecretString": MARKER, "VersionId": "v1"},
    )
    record = shape(call)
    assert record["eventVersion"] == "1.08"
    assert record["eventTime"] == "2023-11-14T22:13:20Z"
    assert record["eventSource"] == "secretsmanager.amazonaws.com"
    assert record["eventName"] == "GetSecretValue"
    assert record["userIdentity"] == {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEUSER",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/app",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLEUSERKEY",
        "userName": "app",
    }
    assert record["requestParameters"] == {"secretId": "db/app", "versionStage": "AWSCURRENT"}
    assert record["responseElements"] is None
    assert record["readOnly"] is True
    assert record["resources"] == [
        {"ARN": ARN, "type": "AWS::SecretsManager::Secret", "accountId": ACCOUNT}
    ]
    assert record["sourceIPAddress"] == "192.0.2.7" and record["requestID"] == "req-1"
    assert "errorCode" not in record
    assert MARKER not in canonical(record)


def test_the_root_has_no_user_name_and_a_refusal_records_its_error():
    call = ApiCall(
        "secretsmanager",
        "DeleteSecret",
        root_caller(ACCOUNT, "AKIAROOT"),
        CONTEXT,
        False,
        {"SecretId": "db/app"},
        None,
        "AccessDeniedException",
        "User: ... is not authorized",
    )
    record = shape(call)
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAROOT",
    }
    assert record["errorCode"] == "AccessDeniedException"
    assert record["errorMessage"] == "User: ... is not authorized"
    assert record["responseElements"] is None


def test_an_unauthenticated_call_names_nobody_and_records_no_parameters():
    call = ApiCall("secretsmanager", "GetSecretValue", None, CONTEXT, True)
    record = shape(call)
    assert record["userIdentity"] == {"type": "Unknown"}
    assert record["requestParameters"] is None


@pytest.mark.parametrize(
    ("request_members", "response"),
    [
        ({"Name": "n", "SecretString": MARKER}, {"ARN": ARN, "Name": "n"}),
        ({"SecretId": "n", "SecretBinary": MARKER.encode().hex()}, {"ARN": ARN}),
        ({}, {"RandomPassword": MARKER}),
        ({"UserName": "u"}, {"AccessKey": {"AccessKeyId": "AKIA1", "SecretAccessKey": MARKER}}),
        ({"SecretStringList": [MARKER]}, None),
        ({"Nested": [{"Password": MARKER}]}, {"SessionToken": MARKER}),
    ],
)
def test_values_passwords_and_keys_are_removed_wherever_they_are(request_members, response):
    call = ApiCall("iam", "CreateAccessKey", USER, CONTEXT, False, request_members, response)
    text = canonical(shape(call))
    assert MARKER not in text and MARKER.encode().hex() not in text


def test_write_responses_are_kept_in_lower_camel_case_with_dates_as_text():
    call = ApiCall(
        "secretsmanager",
        "DeleteSecret",
        USER,
        CONTEXT,
        False,
        {"SecretId": "db/app", "RecoveryWindowInDays": 7},
        {"ARN": ARN, "Name": "db/app", "DeletionDate": 1_700_000_000.25},
    )
    record = shape(call)
    assert record["requestParameters"] == {"secretId": "db/app", "recoveryWindowInDays": 7}
    assert record["responseElements"] == {
        "arn": ARN,
        "name": "db/app",
        "deletionDate": "2023-11-14T22:13:20Z",
    }


members = st.dictionaries(
    st.sampled_from(["SecretId", "Name", "SecretString", "VersionStage", "Tags", "secretId"]),
    st.text(max_size=5)
    | st.integers()
    | st.lists(st.fixed_dictionaries({"Key": st.text(max_size=3), "Value": st.text(max_size=3)})),
    max_size=4,
)


@given(
    operation=st.sampled_from(["GetSecretValue", "CreateSecret", "BatchGetSecretValue"]),
    caller=st.sampled_from([None, USER, root_caller(ACCOUNT, "AKIAROOT")]),
    read_only=st.booleans(),
    request=st.none() | members,
    response=st.none() | st.fixed_dictionaries({"ARN": st.just(ARN), "Name": st.text()}),
    error=st.none() | st.tuples(st.text(max_size=8), st.text(max_size=8)),
    at=st.floats(0, 4e9),
    agent=st.text(max_size=30),
)
def test_the_fast_renderer_writes_exactly_the_canonical_record(
    operation, caller, read_only, request, response, error, at, agent
):
    context = RequestFacts("r", "10.0.0.1", agent, False)
    call = ApiCall(
        "secretsmanager",
        operation,
        caller,
        context,
        read_only,
        request,
        response,
        error[0] if error else None,
        error[1] if error else None,
    )
    renderer = CallRenderer(region="us-east-1", account=ACCOUNT)
    fast = renderer.render(call, at=at, event_id="e1")
    slow = canonical(shape_call(call, region="us-east-1", account=ACCOUNT, at=at, event_id="e1"))
    assert fast == slow
    json.loads(fast)


class MemoryLog(AuditLog):
    def __init__(self, may_block: bool) -> None:
        self.appends_may_block = may_block
        self.records: list[str] = []
        self.groups: list[int] = []
        self.broken = False
        self.gate: asyncio.Event | None = None

    async def append_async(self, records):
        if self.gate is not None:
            await self.gate.wait()
        self.append(records)

    def append(self, records):
        if self.broken:
            raise AuditWriteError("disk full")
        self.records.extend(records)
        self.groups.append(len(records))

    def lines(self, after=0):
        return iter(())


def call_of(operation: str) -> ApiCall:
    return ApiCall("secretsmanager", operation, USER, CONTEXT, True, {"SecretId": "s"})


@pytest.mark.parametrize("may_block", [False, True])
def test_a_record_that_cannot_be_stored_refuses_the_call_until_one_can(may_block):
    log = MemoryLog(may_block)
    trail = AuditTrail(log, region="us-east-1", account=ACCOUNT)
    try:
        asyncio.run(trail.record(call_of("GetSecretValue")))
        assert not trail.failing and len(log.records) == 1
        log.broken = True
        with pytest.raises(AuditUnavailable) as refused:
            asyncio.run(trail.record(call_of("DescribeSecret")))
        assert refused.value.status == 500 and refused.value.code == "InternalServiceError"
        assert trail.failing
        log.broken = False
        asyncio.run(trail.record(call_of("ListSecrets")))
        assert not trail.failing
        assert [json.loads(r)["eventName"] for r in log.records] == [
            "GetSecretValue",
            "ListSecrets",
        ]
    finally:
        trail.close()


def test_records_of_calls_finishing_while_a_group_is_stored_go_in_the_next_group():
    log = MemoryLog(may_block=True)
    trail = AuditTrail(log, region="us-east-1", account=ACCOUNT)

    async def many() -> None:
        log.gate = asyncio.Event()  # the first group waits: the rest queue up behind it
        first = asyncio.ensure_future(trail.record(call_of("GetSecretValue")))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(trail.record(call_of("ListSecrets"))) for _ in range(50)]
        await asyncio.sleep(0)
        log.gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(many())
    assert len(log.records) == 51
    assert log.groups == [1, 50]
    trail.close()


def test_service_events_go_on_the_trail_from_other_threads():
    log = MemoryLog(may_block=True)
    trail = AuditTrail(log, region="us-east-1", account=ACCOUNT)
    try:
        trail.record_blocking(
            trail.service_event("RotationStepSucceeded", ARN, step="createSecret", token="t")
        )
        (record,) = [json.loads(r) for r in log.records]
        assert record["eventType"] == "AwsServiceEvent"
        assert record["userIdentity"] == {
            "accountId": ACCOUNT,
            "invokedBy": "secretsmanager.amazonaws.com",
        }
        assert record["serviceEventDetails"] == {"step": "createSecret", "token": "t"}
        assert record["resources"][0]["ARN"] == ARN
    finally:
        trail.close()
