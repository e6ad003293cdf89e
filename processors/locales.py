"""Locale negotiation: explicit preference, then the shipping country, then the default."""

from __future__ import annotations

from functools import lru_cache

SUPPORTED = ("en", "de", "fr", "es", "it", "pt_BR", "ja", "zh_Hans")
DEFAULT = "en"

# Country -> locale where the country's main language is supported.
COUNTRY_LOCALE = {
    "DE": "de", "AT": "de", "CH": "de", "LI": "de",
    "FR": "fr", "BE": "fr", "LU": "fr", "MC": "fr",
    "ES": "es", "MX": "es", "AR": "es", "CO": "es", "CL": "es", "PE": "es",
    "IT": "it", "SM": "it", "BR": "pt_BR", "JP": "ja", "CN": "zh_Hans", "SG": "zh_Hans",
}
_ALIASES = {"pt": "pt_BR", "zh": "zh_Hans", "zh_cn": "zh_Hans", "zh_sg": "zh_Hans"}


@lru_cache(maxsize=512)
def normalize(tag: str | None) -> str | None:
    """Map a BCP 47 / POSIX tag (``de-DE``, ``pt_br``, ``zh-Hans-CN``) to a supported locale."""
    if not tag:
        return None
    cleaned = tag.strip().replace("-", "_").split(".")[0]
    if not cleaned:
        return None
    lowered = cleaned.lower()
    for locale in SUPPORTED:
        if lowered == locale.lower():
            return locale
    if lowered.startswith("zh_hans") or lowered in _ALIASES:
        return _ALIASES.get(lowered, "zh_Hans")
    if lowered.startswith("pt"):
        return "pt_BR"
    language = lowered.split("_")[0]
    return language if language in SUPPORTED else None


def negotiate(preferred: str | None, country: str | None, default: str = DEFAULT) -> str:
    """Always returns one of ``SUPPORTED``."""
    explicit = normalize(preferred)
    if explicit:
        return explicit
    by_country = COUNTRY_LOCALE.get((country or "").strip().upper())
    return by_country or (default if default in SUPPORTED else DEFAULT)
