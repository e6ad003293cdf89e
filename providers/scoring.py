"""Smart routing: order a chain's providers by a score of health, load, cost and region.

Weights from settings (the case study's: health 0.4, load 0.3, cost 0.2, geo 0.1). Health is
the recent success rate discounted by recent latency; load is the share of the provider's
rate not in use; cost is relative to the dearest provider; geo is 1 when the provider's
region serves the recipient's.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.locales import SUPPORTED

REGION_OF_LOCALE = {"en": "us", "de": "eu", "fr": "eu", "es": "eu", "it": "eu", "pt_BR": "us",
                    "ja": "apac", "zh_Hans": "apac"}
assert set(REGION_OF_LOCALE) == set(SUPPORTED)


@dataclass
class ProviderStats:
    """Exponentially weighted recent behaviour of one provider."""

    success: float = 1.0
    latency_ms: float = 0.0
    in_flight: int = 0
    alpha: float = 0.2

    def observe(self, ok: bool, latency_ms: float) -> None:
        self.success += self.alpha * ((1.0 if ok else 0.0) - self.success)
        self.latency_ms += self.alpha * (latency_ms - self.latency_ms)


@dataclass(frozen=True)
class Weights:
    health: float = 0.4
    load: float = 0.3
    cost: float = 0.2
    geo: float = 0.1


def score(stats: ProviderStats, capacity_per_s: float, cost: float, max_cost: float,
          region_match: bool, weights: Weights) -> float:
    health = stats.success / (1.0 + stats.latency_ms / 1000.0)
    load = max(0.0, 1.0 - stats.in_flight / max(1.0, capacity_per_s))
    cheapness = 1.0 - (cost / max_cost if max_cost > 0 else 0.0)
    return (weights.health * health + weights.load * load + weights.cost * cheapness
            + weights.geo * (1.0 if region_match else 0.0))
