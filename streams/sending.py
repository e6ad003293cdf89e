"""What a sender needs besides Kafka, built from settings: provider chains and the renderer.

Shared by the full worker (streams/worker.py) and the critical lane (streams/critical_lane.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from core.catalogue import EmailType
from core.settings import Settings, name_values
from core.vocab import Priority
from processors.rendering import Renderer
from processors.tracking import Tracker
from providers import registry as providers
from providers.base import BlockingPool
from providers.breaker import CircuitBreaker
from providers.chain import Guarded, ProviderChain
from providers.ratelimit import TokenBucket
from providers.scoring import Weights
from streams import metrics
from streams.quarantine import ProviderQuarantine


def provider_chains(settings: Settings, priorities: Iterable[Priority], only: str | None,
                    quarantine: ProviderQuarantine | None = None
                    ) -> tuple[dict[Priority, ProviderChain], dict[str, Guarded]]:
    """One breaker and bucket per provider, shared by the priorities' chains, but a client
    (connection pool) per priority: a password reset never queues behind a campaign for an
    SMTP connection. ``only`` (``--provider``) replaces every chain with that one provider."""
    rates = name_values(settings.provider_rates, "provider_rates")
    costs = name_values(settings.provider_costs, "provider_costs")
    regions = name_values(settings.provider_regions, "provider_regions", str)
    weights = Weights(**name_values(settings.routing_weights, "routing_weights"))
    smart = {p.strip() for p in settings.smart_routing.split(",")}
    pool = BlockingPool(settings.provider_threads)
    shared: dict[str, Guarded] = {}
    built: dict[str, Guarded] = {}
    chains = {}
    for priority in priorities:
        names = [only] if only else [n.strip() for n in getattr(
            settings, f"providers_{priority.value}").split(",") if n.strip()]
        members = []
        for name in names:
            if name not in shared:  # what the provider declares, unless settings say otherwise
                provider = providers.build(name, settings, pool)
                rate = rates.get(name, provider.rate_per_s)
                shared[name] = Guarded(provider,
                                       CircuitBreaker(settings.breaker_failures,
                                                      settings.breaker_cooldown_s),
                                       TokenBucket(rate_per_s=rate, burst=max(1.0, rate)),
                                       costs.get(name, provider.cost_per_1k),
                                       regions.get(name, provider.region))
                member = shared[name]
            else:
                member = replace(shared[name], provider=providers.build(name, settings, pool))
            built[f"{name}/{priority.value}"] = member
            members.append(member)
        chains[priority] = ProviderChain(members, weights if priority.value in smart else None)
        if quarantine is not None:
            chains[priority].quarantined = quarantine.names
    return chains, built


def pdf_types(settings: Settings) -> frozenset[EmailType]:
    try:
        return frozenset(EmailType(t.strip()) for t in settings.pdf_attachments.split(",")
                         if t.strip())
    except ValueError as err:
        raise ValueError(f"FLOWMAIL_PDF_ATTACHMENTS: {err}") from err



def provider_quarantine(settings: Settings) -> ProviderQuarantine | None:
    """FLOWMAIL_ALERT_TAKE_PROVIDER_OUT: chains skip a provider while its failure-rate alert
    is raised."""
    if not settings.alert_take_provider_out:
        return None
    return ProviderQuarantine(settings.kafka_bootstrap)


def sender_tracker(settings: Settings) -> Tracker | None:
    """Open and click tracking for FLOWMAIL_TRACKING_TYPES (None: nothing tracked)."""
    if not settings.tracking_types.strip() or not settings.tracking_secret:
        return None
    return Tracker.of(settings.tracking_secret, settings.tracking_base_url,
                      settings.tracking_types, settings.pseudonym_secret.encode())


def sender_renderer(settings: Settings) -> Renderer:
    """The renderer of the senders, its templates compiled before the first email."""
    renderer = Renderer(
        branding_file=settings.branding_file, pdf_types=pdf_types(settings),
        on_locale_fallback=lambda locale: metrics.LOCALE_FALLBACKS.labels(locale[:20]).inc())
    renderer.warm()
    return renderer
