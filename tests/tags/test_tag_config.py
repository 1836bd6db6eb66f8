"""Reading the tag settings from the environment, and the host allow-list."""

from __future__ import annotations

import logging

import pytest

from spanledger.instrumentation.baggage.config import InboundPolicy, TagConfig
from spanledger.instrumentation.baggage.hosts import DEFAULT_HOST_ALLOW_LIST, HostAllowList
from spanledger.semconv import DEFAULT_TAG_KEYS


def test_defaults() -> None:
    config = TagConfig.from_env({})
    assert config.tag_keys == DEFAULT_TAG_KEYS == ("customer", "feature", "team", "env")
    assert config.value_max_length == 128
    assert config.inbound is InboundPolicy.KEEP
    assert config.baggage_hosts == DEFAULT_HOST_ALLOW_LIST


def test_values_from_the_environment() -> None:
    config = TagConfig.from_env(
        {
            "SPANLEDGER_TAG_KEYS": " tenant_id, version ,plan,tenant_id,",
            "SPANLEDGER_TAG_VALUE_MAX_LENGTH": "16",
            "SPANLEDGER_INBOUND_TAGS": "DROP",
            "SPANLEDGER_BAGGAGE_HOSTS": "billing.corp.example",
        }
    )
    assert config.tag_keys == ("tenant_id", "version", "plan")
    assert config.value_max_length == 16
    assert config.inbound is InboundPolicy.DROP
    assert config.baggage_hosts.allows("billing.corp.example")
    assert not config.baggage_hosts.allows("localhost")


def test_bad_values_are_logged_and_defaulted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = TagConfig.from_env(
            {
                "SPANLEDGER_TAG_KEYS": "customer,bad key,",
                "SPANLEDGER_TAG_VALUE_MAX_LENGTH": "-3",
                "SPANLEDGER_INBOUND_TAGS": "maybe",
                "SPANLEDGER_BAGGAGE_HOSTS": "localhost,http://x/y",
            }
        )
    assert config.tag_keys == ("customer",)
    assert config.value_max_length == 128
    assert config.inbound is InboundPolicy.KEEP
    assert config.baggage_hosts.allows("localhost")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SPANLEDGER_TAG_KEYS: ignoring 'bad key'" in text
    assert "SPANLEDGER_TAG_VALUE_MAX_LENGTH='-3' is not a positive integer" in text
    assert "SPANLEDGER_INBOUND_TAGS='maybe' is neither keep nor drop" in text
    assert "SPANLEDGER_BAGGAGE_HOSTS: ignoring 'http://x/y'" in text


def test_no_valid_tag_key_falls_back_to_the_defaults() -> None:
    assert TagConfig.from_env({"SPANLEDGER_TAG_KEYS": "a b, c d"}).tag_keys == DEFAULT_TAG_KEYS


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "app.localhost",
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "[::1]",
        "10.1.2.3",
        "172.31.0.1",
        "192.168.1.10",
        "fd00::5",
        "billing",
        "billing.default.svc",
        "billing.default.svc.cluster.local",
        "metadata.google.internal",
        "printer.local",
    ],
)
def test_default_allow_list_admits_internal_hosts(host: str) -> None:
    assert DEFAULT_HOST_ALLOW_LIST.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "myresource.openai.azure.com",
        "openrouter.ai",
        "8.8.8.8",
        "172.32.0.1",
        "2001:db8::1",
        "internal.example.com",
        "",
        None,
    ],
)
def test_default_allow_list_refuses_public_and_unknown_hosts(host: str | None) -> None:
    assert not DEFAULT_HOST_ALLOW_LIST.allows(host)


def test_allow_list_entries() -> None:
    allow_list, problems = HostAllowList.parse_reporting(
        "api.billing.example, *.corp.example, 203.0.113.0/24, 2001:db8::/32, bad/host"
    )
    assert problems == ["bad/host"]
    assert allow_list.allows("API.billing.example")
    assert not allow_list.allows("x.api.billing.example")
    assert allow_list.allows("a.b.corp.example")
    assert not allow_list.allows("corp.example")
    assert not allow_list.allows("evilcorp.example")
    assert allow_list.allows("203.0.113.7")
    assert allow_list.allows("2001:db8::9")
    assert not allow_list.allows("billing")


def test_star_allows_every_host_and_empty_allows_none() -> None:
    assert HostAllowList.parse("*").allows("api.openai.com")
    assert not HostAllowList.parse("").allows("localhost")
