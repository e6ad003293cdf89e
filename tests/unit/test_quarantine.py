"""An alert that acts (streams/quarantine.py, providers/chain.py): a provider whose
failure-rate alert is raised is skipped while another provider is left."""

from __future__ import annotations

import json

from core.settings import Settings
from core.vocab import Priority
from providers.chain import bulk_capable
from streams.quarantine import _merge, _parse
from streams.sending import provider_chains

SETTINGS = Settings(providers_transactional="sendgrid,ses", smart_routing="",
                    sendgrid_api_key="SG.test")


def _chain():
    chains, _ = provider_chains(SETTINGS, [Priority.TRANSACTIONAL], None)
    return chains[Priority.TRANSACTIONAL]


def names(members):
    return [m.provider.name for m in members]


def test_a_provider_out_is_skipped_while_another_is_left():
    chain = _chain()
    assert names(chain.order()) == ["sendgrid", "ses"]
    chain.quarantined = lambda: frozenset({"sendgrid"})
    assert names(chain.order()) == ["ses"]
    assert bulk_capable(chain) == []  # marketing then goes one by one through the others
    chain.quarantined = lambda: frozenset({"sendgrid", "ses"})  # never nobody
    assert names(chain.order()) == ["sendgrid", "ses"]


def test_raised_alerts_stay_and_cleared_ones_leave():
    raised = {"type": "anomaly", "rule": "provider_failure_rate", "key": "sendgrid",
              "state": "raised"}
    assert _merge(None, _parse(json.dumps(raised).encode())) == raised
    assert _merge(raised, {**raised, "state": "cleared"}) is None
    assert _merge(None, {"type": "critical_failure"}) is None  # other alerts are not entries
    assert _parse(None) is None
