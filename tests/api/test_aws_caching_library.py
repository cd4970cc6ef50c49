"""AWS's own client-side caching library (aws-secretsmanager-caching) against the server."""

from __future__ import annotations

import uuid

from aws_secretsmanager_caching import SecretCache, SecretCacheConfig


def test_aws_secret_cache_reads_and_follows_a_new_version(shared_server):
    sm = shared_server.client()
    name = f"awscache/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="first")
    sm.create_secret(Name=f"{name}-bin", SecretBinary=b"\x00\x01binary")
    cache = SecretCache(config=SecretCacheConfig(secret_refresh_interval=0), client=sm)
    assert cache.get_secret_string(name) == "first"
    assert cache.get_secret_binary(f"{name}-bin") == b"\x00\x01binary"
    sm.put_secret_value(SecretId=name, SecretString="second")
    # With refresh interval 0 the library revalidates with DescribeSecret at once and
    # fetches the version AWSCURRENT now points to.
    assert cache.get_secret_string(name) == "second"
    pending = sm.put_secret_value(SecretId=name, SecretString="third", VersionStages=["AWSPENDING"])
    assert cache.get_secret_string(name, version_stage="AWSPENDING") == "third"
    assert cache.get_secret_string(name) == "second"
    assert pending["VersionStages"] == ["AWSPENDING"]
