"""HTTP status -> ProviderError, shared by the JSON/HTTP providers."""

from __future__ import annotations

from providers.base import ProviderError


def from_status(provider: str, status: int, body: str, retry_after: str | None) -> ProviderError:
    detail = f"HTTP {status}: {body[:200]}"
    if status == 429:
        return ProviderError(provider, detail, transient=True, status=status,
                             retry_after_s=_seconds(retry_after))
    if status >= 500:
        return ProviderError(provider, detail, transient=True, status=status)
    if status in {401, 403}:  # our credentials: another provider can still send it
        return ProviderError(provider, detail, transient=True, status=status)
    return ProviderError(provider, detail, transient=False, status=status, provider_fault=False)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
