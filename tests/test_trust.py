"""The trust policy for locations named by records, and the bounded http(s) reader.

Fast tests without the sandbox: the resolver is replaced by a fixed table (there is no DNS here),
and a loopback file host stands in for a public web server (there is none offline)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import atdata_lab as atdata
from atdata_lab import urls
from atdata_lab.atmosphere._http import json_depth
from atdata_lab.errors import AtdataLabError, RemoteUnavailableError, UntrustedSourceError
from atdata_lab.urls import TRUST_OPTION, TrustPolicy, check_remote_url, credentials_allowed
from tests.reliability.hostile import LoopbackServer, file_host, shard_bytes

TABLE = {
    "example.org": ["93.184.216.34"],
    "both.example": ["93.184.216.34", "10.0.0.1"],
    "v6.example": ["2606:4700::1111"],
    "v6loop.example": ["::1"],
    "localhost": ["127.0.0.1"],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """A stand-in resolver: this machine has no DNS, and the policy must be shown answering for public,
    private and internal names (the hostile-publisher suite checks the same policy on real sockets)."""

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list:
        try:
            return socket.getaddrinfo(host, port, *args, flags=socket.AI_NUMERICHOST)
        except (OSError, UnicodeError):
            pass
        if host not in TABLE:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in TABLE[host]
        ]

    monkeypatch.setattr(urls, "_getaddrinfo", resolve)
    for k in (
        "ATDATA_ALLOW_LOCAL_URLS",
        "ATDATA_TRUSTED_HOSTS",
        "ATDATA_TRUSTED_DIDS",
        "ATDATA_S3_CREDENTIAL_ENDPOINTS",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(k, raising=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a.tar",
        "http://example.org:8080/a.tar",
        "https://v6.example/a.tar",
        "https://[2606:4700::1111]/a.tar",
        "s3://bucket/key.tar",
        "https://93.184.216.34/a.tar",
    ],
)
def test_public_locations_are_allowed(url):
    assert check_remote_url(url, record_uri="at://x") == url


@pytest.mark.parametrize(
    "url, why",
    [
        ("/etc/passwd", "local file"),
        ("file:///etc/passwd", "local file"),
        ("local:///x", "local file"),
        ("memory://x", "scheme"),
        ("ftp://example.org/x", "scheme"),
        ("simplecache::https://example.org/x", "chained"),
        ("s3://bucket/a::file:///x", "chained"),
        ("https://both.example/x", "10.0.0.1"),
        ("http://localhost/x", "127.0.0.1"),
        ("https://v6loop.example/x", "::1"),
        ("http://[::ffff:10.0.0.1]/x", "internal"),
        ("http://user@example.org/x", "host"),
        ("http://example.org\\@localhost/x", "host"),
        ("http://169.254.169.254/", "internal"),
        ("s3://x", "s3://bucket/key"),
    ],
)
def test_other_locations_are_refused_naming_record_url_and_setting(url, why):
    with pytest.raises(UntrustedSourceError) as e:
        check_remote_url(url, record_uri="at://did:plc:x/science.alt.dataset.entry/k")
    msg = str(e.value)
    assert why in msg and "at://did:plc:x/science.alt.dataset.entry/k" in msg
    assert isinstance(e.value, PermissionError) and isinstance(e.value, AtdataLabError)


def test_settings_allow_what_they_name(monkeypatch):
    assert check_remote_url("/etc/passwd", trusted=TrustPolicy(allow_local=True))
    assert check_remote_url("http://localhost:81/x", trusted=TrustPolicy(trusted_hosts={"localhost:81"}))
    assert check_remote_url("http://localhost:81/x", trusted=TrustPolicy(trusted_hosts={"127.0.0.1"}))
    with pytest.raises(UntrustedSourceError):
        check_remote_url("http://localhost:82/x", trusted=TrustPolicy(trusted_hosts={"localhost:81"}))
    assert check_remote_url("memory://x", trusted=True) == "memory://x"
    assert check_remote_url("file:///x", own=True) == "file:///x"
    monkeypatch.setenv("ATDATA_ALLOW_LOCAL_URLS", "1")
    monkeypatch.setenv("ATDATA_TRUSTED_HOSTS", "127.0.0.1:2583, [::1]:5")
    monkeypatch.setenv("ATDATA_TRUSTED_DIDS", "did:plc:Friend")
    p = TrustPolicy.from_env()
    assert (
        p.allow_local
        and p.trusted_hosts == {"127.0.0.1:2583", "[::1]:5"}
        and p.trusts_publisher("did:plc:friend")
    )


def test_a_host_that_does_not_resolve_is_a_connection_error():
    with pytest.raises(RemoteUnavailableError):
        check_remote_url("https://nowhere.invalid/x")


def test_credentials_go_only_to_configured_endpoints(monkeypatch):
    assert credentials_allowed(None)  # AWS itself
    assert not credentials_allowed("https://s3.attacker.example")
    assert credentials_allowed(
        "https://s3.attacker.example", TrustPolicy(credential_endpoints={"https://s3.attacker.example"})
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.local:9000/")
    assert credentials_allowed("http://minio.local:9000") and not credentials_allowed(
        "http://minio.local:9001"
    )
    urls.note_configured_endpoint("https://store.example")
    assert credentials_allowed("https://store.example:443/")


def test_json_depth_is_found_without_recursion():
    assert json_depth(b'{"a": "[[[[", "b": [1, {"c": "\\"]"}]}') == 3
    assert json_depth(b"[" * 500_000 + b"]" * 500_000) == 500_000
    assert json_depth(b'"unterminated [[[') == 3  # invalid JSON: counted conservatively


@pytest.mark.parametrize("honour_range", [True, False])
def test_http_shards_stream_in_blocks_and_random_access_cuts_the_body(tmp_path, monkeypatch, honour_range):
    """A loopback file host stands in for a public web server, with and without Range support."""
    data = shard_bytes(tmp_path, n=50)
    monkeypatch.setattr(urls, "REMOTE_BLOCK", 4096)
    with LoopbackServer(file_host({"/s.tar": data}, honour_range=honour_range)) as host:
        url = f"{host.url}/s.tar"
        for opts in ({}, {TRUST_OPTION: TrustPolicy(trusted_hosts={host.host})}):
            ds = atdata.Dataset(url, storage_options=opts)
            assert [s["label"] for s in ds.ordered()] == [i % 10 for i in range(50)]
            assert ds[17]["label"] == 7 and len(ds) == 50
            assert urls.read_range(url, 1000, 10, opts) == data[1000:1010]
            assert urls.url_size(url, opts) == len(data)
        assert len(urls.read_range(url, len(data) - 5, 100)) == 5
        with pytest.raises(UntrustedSourceError):  # the default policy refuses the loopback host at connect
            list(atdata.Dataset(url, storage_options={TRUST_OPTION: TrustPolicy()}))
