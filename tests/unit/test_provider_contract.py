"""The provider contract (providers/base.py): declarations checked at import, every module's
provider found without registering it, failures classified by the base's sequence."""

from __future__ import annotations

import asyncio

import pytest

from core.settings import Settings
from core.vocab import Priority
from providers.base import BlockingPool, Provider, ProviderError
from providers.registry import PROVIDERS
from streams.sending import provider_chains


def test_every_provider_module_is_found():
    assert set(PROVIDERS) == {"mailgun", "sendgrid", "ses", "smtp"}
    for name, kind in PROVIDERS.items():
        assert kind.name == name
        assert kind.cost_per_1k >= 0 and kind.rate_per_s > 0 and kind.region
        assert (kind.bulk_placeholder is None) == (kind.bulk_max == 1)


def test_a_provider_that_does_not_declare_its_cost_is_refused():
    with pytest.raises(TypeError, match="cost_per_1k"):
        class Cheap(Provider):
            name, region, rate_per_s = "cheap", "eu", 10.0
    assert "cheap" not in Provider.registered


def test_the_base_classifies_what_deliver_raises():
    class Flaky(Provider):
        name, cost_per_1k, region, rate_per_s = "flaky-test", 1.0, "eu", 1.0

        @classmethod
        def from_settings(cls, settings: Settings, pool: BlockingPool) -> Flaky:
            return cls()

        async def deliver(self, message: object) -> str:
            raise ConnectionResetError("peer went away")

    try:
        with pytest.raises(ProviderError) as caught:
            asyncio.run(Flaky().send(object()))  # type: ignore[arg-type]
        assert caught.value.transient and caught.value.provider == "flaky-test"
        assert not Flaky().supports_bulk
    finally:
        Provider.registered.pop("flaky-test")


def test_declarations_feed_routing_and_settings_override_them():
    settings = Settings(providers_transactional="ses,sendgrid", provider_costs="ses=0.5",
                        sendgrid_api_key="SG.test")
    chains, _ = provider_chains(settings, [Priority.TRANSACTIONAL], None)
    members = {m.provider.name: m for m in chains[Priority.TRANSACTIONAL].members}
    assert members["ses"].cost_per_1k == 0.5                       # the setting
    assert members["sendgrid"].cost_per_1k == PROVIDERS["sendgrid"].cost_per_1k  # declared
    assert members["sendgrid"].bucket.rate_per_s == PROVIDERS["sendgrid"].rate_per_s
    assert members["ses"].region == "eu"


def test_the_unsubscribe_link_reaches_providers_as_fields():
    from processors.campaigns import unsubscribe_link, unsubscribe_parts
    assert unsubscribe_link("https://s.example/u", "T") == "https://s.example/u?token=T"
    assert unsubscribe_link("https://s.example/u?l=de", "T") == "https://s.example/u?l=de&token=T"
    fields = {"unsubscribe_url": "ignored", "unsubscribe_base_url": "https://s.example/u?l=de",
              "unsubscribe_token": "T"}
    assert unsubscribe_parts(fields) == ("https://s.example/u?l=de", "T")
    # a command of an earlier version carries only the URL
    assert unsubscribe_parts({"unsubscribe_url": "https://s.example/u?token=T"}) == (
        "https://s.example/u", "T")
