"""ListSecrets and ListSecretVersionIds against the live server.

The shared server holds every other test's secrets too, so each test gives its secrets a
fresh name prefix and either filters on it or looks only at its own names in the result.
"""

from __future__ import annotations

import time
import uuid

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import expect_error, labelled, token, unique_name


def fresh_prefix(label: str) -> str:
    return f"{label}{uuid.uuid4().hex[:10]}"


def list_all(client, **kwargs) -> list[dict]:
    """Every page of ListSecrets, failing on a secret listed twice."""
    entries: list[dict] = []
    while True:
        page = client.list_secrets(**kwargs)
        entries += page["SecretList"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    arns = [e["ARN"] for e in entries]
    assert len(arns) == len(set(arns)), "a secret came back on two pages"
    return entries


def names(client, *filters: tuple[str, list[str]], **kwargs) -> set[str]:
    spec = [{"Key": key, "Values": values} for key, values in filters]
    return {e["Name"] for e in list_all(client, Filters=spec, **kwargs)}


@pytest.fixture(scope="module")
def catalogue(shared_server):
    """Five secrets under one prefix, with descriptions and tags to filter on."""
    sm = shared_server.client()
    p = fresh_prefix("cat")
    made = {
        "Alpha": dict(Description="Primary Database credentials", Tags=[("Owner", "TeamA")]),
        "alpha": dict(Description="secondary cache", Tags=[("owner", "teamb")]),
        "beta": dict(Description="Token for the billing API", Tags=[("Cost", "Billing-7")]),
        "gamma": dict(Tags=[("Project", "Zephyr")]),
        "delta": dict(Description="Description of my secret", Tags=[]),
    }
    for leaf, spec in made.items():
        sm.create_secret(
            Name=f"{p}/{leaf}",
            SecretString="v",
            Tags=[{"Key": k, "Value": v} for k, v in spec.pop("Tags")],
            **spec,
        )
    return p


def test_name_filter_is_a_case_sensitive_prefix(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [f"{p}/al"])) == {f"{p}/alpha"}
    assert names(sm, ("name", [f"{p}/Al"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [f"{p}/"])) == {
        f"{p}/{n}" for n in ("Alpha", "alpha", "beta", "gamma", "delta")
    }
    # A piece from inside the name is not a prefix.
    assert not names(sm, ("name", [p[3:]])) & names(sm, ("name", [p]))


def test_values_of_one_filter_are_alternatives(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [f"{p}/al", f"{p}/be"])) == {f"{p}/alpha", f"{p}/beta"}


def test_filters_on_different_keys_must_all_match(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [p]), ("tag-key", ["Owner"])) == {f"{p}/Alpha"}


def test_description_filter_ignores_case(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [p]), ("description", ["primary"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [p]), ("description", ["PRIMARY DATA"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [p]), ("description", ["nothing-like-it"])) == set()


def test_description_filter_matches_words_inside_the_description(sm, catalogue):
    # The user guide: "Description: My Description" also finds "Description of my secret".
    p = catalogue
    assert names(sm, ("name", [p]), ("description", ["billing"])) == {f"{p}/beta"}


def test_description_filter_words_match_in_any_order(sm, catalogue):
    # The user guide's own example: "My Description" finds "Description of my secret".
    p = catalogue
    assert names(sm, ("name", [p]), ("description", ["My Description"])) == {f"{p}/delta"}


def test_all_filter_breaks_its_value_into_words(sm, catalogue):
    # "credsDatabase#892" searches for creds, Database and 892: punctuation separates words.
    p = catalogue
    assert names(sm, ("name", [p]), ("all", ["gamma_zephyr"])) == {f"{p}/gamma"}


def test_all_filter_matches_the_starts_of_words_not_pieces_of_them(sm):
    """AWS: "all" matches word prefixes. Words end at anything but a letter or digit, where
    a lower-case letter meets an upper-case one, and where letters meet digits; so
    "Secret" finds MySecret and my-secret but not Thirdsecret."""
    # One lower-case word of letters from g to v: no word of it starts with what is asked.
    p = "words" + "".join(chr(ord("g") + int(c, 16)) for c in uuid.uuid4().hex[:12])
    leaves = {
        "Thirdsecret1": {},
        "MySecret": {},
        "my-secret_2": {},
        "secretive": {},
        "plain": {"Description": "rotatedSecretValue"},
        "tagged": {"Tags": [{"Key": "Owner", "Value": "team42secrets"}]},
        "other": {"Description": "nothing here"},
    }
    for leaf, extra in leaves.items():
        sm.create_secret(Name=f"{p}/{leaf}", SecretString="v", **extra)
    found = names(sm, ("name", [p]), ("all", ["Secret"]))
    assert found == {
        f"{p}/{n}" for n in ("MySecret", "my-secret_2", "secretive", "plain", "tagged")
    }
    assert names(sm, ("name", [p]), ("all", ["ecret"])) == set()
    assert names(sm, ("name", [p]), ("all", ["third"])) == {f"{p}/Thirdsecret1"}
    # The value is split the same way: "teamSecret" asks for a word starting "team" and one
    # starting "secret"; "42" is a word of its own.
    assert names(sm, ("name", [p]), ("all", ["teamSecret"])) == {f"{p}/tagged"}
    assert names(sm, ("name", [p]), ("all", ["42"])) == {f"{p}/tagged"}
    assert names(sm, ("name", [p]), ("all", ["!secret"])) == {f"{p}/Thirdsecret1", f"{p}/other"}


def test_tag_key_filter_is_a_case_sensitive_prefix(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [p]), ("tag-key", ["Own"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [p]), ("tag-key", ["own"])) == {f"{p}/alpha"}
    assert names(sm, ("name", [p]), ("tag-key", ["wner"])) == set()


def test_tag_value_filter_is_a_case_sensitive_prefix(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [p]), ("tag-value", ["Team"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [p]), ("tag-value", ["Billing-"])) == {f"{p}/beta"}
    assert names(sm, ("name", [p]), ("tag-value", ["billing"])) == set()


def test_all_filter_searches_every_attribute_ignoring_case(sm, catalogue):
    p = catalogue
    assert names(sm, ("name", [p]), ("all", ["PRIMARY"])) == {f"{p}/Alpha"}
    assert names(sm, ("name", [p]), ("all", ["CACHE"])) == {f"{p}/alpha"}
    assert names(sm, ("name", [p]), ("all", ["gamma"])) == {f"{p}/gamma"}
    assert names(sm, ("name", [p]), ("all", ["zephyr"])) == {f"{p}/gamma"}


def test_negated_value_excludes_matches(sm, catalogue):
    p = catalogue
    found = names(sm, ("name", [f"!{p}/al"]))
    assert f"{p}/alpha" not in found
    assert {f"{p}/Alpha", f"{p}/beta", f"{p}/gamma"} <= found


def test_sort_order_follows_creation(sm):
    p = fresh_prefix("sort")
    created = []
    for leaf in ("c", "a", "b"):
        created.append(f"{p}/{leaf}")
        sm.create_secret(Name=created[-1], SecretString="v")
        time.sleep(0.02)
    spec = [{"Key": "name", "Values": [p]}]
    ascending = [e["Name"] for e in list_all(sm, Filters=spec, SortOrder="asc")]
    descending = [e["Name"] for e in list_all(sm, Filters=spec, SortOrder="desc")]
    assert ascending == created
    assert descending == created[::-1]


def test_sort_by_name(sm):
    p = fresh_prefix("sortname")
    for leaf in ("c", "a", "b"):
        sm.create_secret(Name=f"{p}/{leaf}", SecretString="v")
    spec = [{"Key": "name", "Values": [p]}]
    listed = [e["Name"] for e in list_all(sm, Filters=spec, SortBy="name", SortOrder="asc")]
    assert listed == [f"{p}/a", f"{p}/b", f"{p}/c"]


def test_max_results_and_next_token_walk_every_secret_once(sm):
    p = fresh_prefix("page")
    expected = {f"{p}/{i}" for i in range(5)}
    for name in expected:
        sm.create_secret(Name=name, SecretString="v")
    first = sm.list_secrets(Filters=[{"Key": "name", "Values": [p]}], MaxResults=2)
    assert len(first["SecretList"]) == 2
    assert first["NextToken"]
    assert names(sm, ("name", [p]), MaxResults=2) == expected


def test_garbage_next_token_is_refused(sm):
    with expect_error({"InvalidNextTokenException", "InvalidParameterException"}):
        sm.list_secrets(NextToken="not-a-token-this-server-issued")


def test_max_results_over_100_is_refused(shared_server):
    loose = shared_server.client(parameter_validation=False)
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.list_secrets(MaxResults=101)


def test_unknown_filter_key_is_refused(shared_server):
    loose = shared_server.client(parameter_validation=False)
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.list_secrets(Filters=[{"Key": "colour", "Values": ["red"]}])


def test_planned_deletion_is_listed_only_on_request(sm):
    p = fresh_prefix("planned")
    kept, doomed = f"{p}/kept", f"{p}/doomed"
    sm.create_secret(Name=kept, SecretString="v")
    sm.create_secret(Name=doomed, SecretString="v")
    sm.delete_secret(SecretId=doomed, RecoveryWindowInDays=7)
    assert names(sm, ("name", [p])) == {kept}
    listed = {
        e["Name"]: e
        for e in list_all(sm, Filters=[{"Key": "name", "Values": [p]}], IncludePlannedDeletion=True)
    }
    assert set(listed) == {kept, doomed}
    assert "DeletedDate" in listed[doomed]
    assert "DeletedDate" not in listed[kept]


def test_list_entry_carries_metadata_and_labels(sm):
    name = unique_name("entry")
    version = token()
    arn = sm.create_secret(
        Name=name,
        SecretString="v",
        ClientRequestToken=version,
        Description="about it",
        Tags=[{"Key": "k", "Value": "w"}],
    )["ARN"]
    [entry] = list_all(sm, Filters=[{"Key": "name", "Values": [name]}])
    assert entry["ARN"] == arn
    assert entry["Description"] == "about it"
    assert entry["Tags"] == [{"Key": "k", "Value": "w"}]
    assert entry["SecretVersionsToStages"] == {version: ["AWSCURRENT"]}
    assert "SecretString" not in entry


# ListSecretVersionIds


@pytest.fixture
def five_versions(sm):
    """v0..v4; v4 AWSCURRENT, v3 AWSPREVIOUS, v0..v2 deprecated."""
    name = unique_name("versions")
    ids = [token() for _ in range(5)]
    sm.create_secret(Name=name, SecretString="0", ClientRequestToken=ids[0])
    for i, version in enumerate(ids[1:], start=1):
        sm.put_secret_value(SecretId=name, SecretString=str(i), ClientRequestToken=version)
    return name, ids


def test_list_versions_omits_deprecated_by_default(sm, five_versions):
    name, ids = five_versions
    listed = sm.list_secret_version_ids(SecretId=name)
    assert listed["Name"] == name
    assert listed["ARN"].split(":secret:")[1].startswith(name)
    assert {v["VersionId"]: v["VersionStages"] for v in listed["Versions"]} == {
        ids[4]: ["AWSCURRENT"],
        ids[3]: ["AWSPREVIOUS"],
    }
    assert all("CreatedDate" in v for v in listed["Versions"])


def test_list_versions_includes_deprecated_without_a_stages_key(sm, five_versions):
    name, ids = five_versions
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in listed} == set(ids)
    for entry in listed:
        if entry["VersionId"] in ids[:3]:
            assert "VersionStages" not in entry, entry


def test_list_versions_name_the_default_key(sm, five_versions):
    # AWS lists KmsKeyIds on every version: "DefaultEncryptionKey" without a customer key.
    name, _ = five_versions
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert [v["KmsKeyIds"] for v in listed] == [["DefaultEncryptionKey"]] * 5


def test_list_versions_name_the_customer_key(sm):
    name = unique_name("list-kms")
    sm.create_secret(Name=name, SecretString="x", KmsKeyId="alias/app-secrets")
    listed = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert [v["KmsKeyIds"] for v in listed] == [["alias/app-secrets"]]


def test_list_versions_pages_with_max_results(sm, five_versions):
    name, ids = five_versions
    seen: list[str] = []
    kwargs = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 2}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        assert 1 <= len(page["Versions"]) <= 2
        seen += [v["VersionId"] for v in page["Versions"]]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize("bad", [0, 101])
def test_list_versions_max_results_outside_1_to_100_is_refused(shared_server, five_versions, bad):
    name, _ = five_versions
    loose = shared_server.client(parameter_validation=False)
    with expect_error({"InvalidParameterException", "ValidationException"}):
        loose.list_secret_version_ids(SecretId=name, MaxResults=bad)


def test_list_versions_of_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.list_secret_version_ids(SecretId=unique_name("nope"))


def test_list_versions_omits_a_version_without_value(sm):
    # RotateSecret makes AWSPENDING with no value; the function then fails at createSecret
    # (the value is not the JSON it wants), so the placeholder stays valueless.
    name = unique_name("versions-placeholder")
    current = token()
    pending = token()
    sm.create_secret(Name=name, SecretString="not json", ClientRequestToken=current)
    sm.rotate_secret(
        SecretId=name,
        ClientRequestToken=pending,
        RotationLambdaARN="secretsd-mysql-single-user",
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    assert labelled(sm, name) == {current: {"AWSCURRENT"}, pending: {"AWSPENDING"}}
    with expect_error("ResourceNotFoundException", errors.value_not_found_for_stage("AWSPENDING")):
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    for include in (False, True):
        listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=include)
        assert [v["VersionId"] for v in listed["Versions"]] == [current]


# Page tokens must mark a place in the listing, not an offset: a loop that changes what it
# lists must still see each secret that existed throughout, and none twice.


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_deleting_while_paging_visits_every_secret(sm, order):
    # The usual clean-up loop: list a page, delete what it shows, ask for the next page.
    p = fresh_prefix("drain")
    expected = set()
    for i in range(7):
        expected.add(f"{p}/{i}")
        sm.create_secret(Name=f"{p}/{i}", SecretString="v")
    visited: list[str] = []
    kwargs = {"Filters": [{"Key": "name", "Values": [p]}], "MaxResults": 2, "SortOrder": order}
    while True:
        page = sm.list_secrets(**kwargs)
        for entry in page["SecretList"]:
            visited.append(entry["Name"])
            sm.delete_secret(SecretId=entry["ARN"], ForceDeleteWithoutRecovery=True)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert sorted(visited) == sorted(expected)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_creating_while_paging_repeats_no_secret(sm, order):
    p = fresh_prefix("grow")
    for i in range(6):
        sm.create_secret(Name=f"{p}/{i}", SecretString="v")
    visited: list[str] = []
    kwargs = {"Filters": [{"Key": "name", "Values": [p]}], "MaxResults": 2, "SortOrder": order}
    extra = 0
    while True:
        page = sm.list_secrets(**kwargs)
        visited += [entry["Name"] for entry in page["SecretList"]]
        sm.create_secret(Name=f"{p}/late{extra}", SecretString="v")
        extra += 1
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert len(visited) == len(set(visited)), visited
    assert {f"{p}/{i}" for i in range(6)} <= set(visited)


def test_versions_added_while_paging_repeat_no_version(sm, five_versions):
    name, ids = five_versions
    seen: list[str] = []
    kwargs = {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 2}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        seen += [v["VersionId"] for v in page["Versions"]]
        sm.put_secret_value(SecretId=name, SecretString="late")
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert len(seen) == len(set(seen)), seen
    assert set(ids) <= set(seen)
