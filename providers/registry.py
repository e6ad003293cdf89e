"""Provider name -> class, found by importing every module of this package: a provider is
one module with one ``Provider`` subclass (providers/base.py), nothing else to register."""

from __future__ import annotations

import importlib
import pkgutil

import providers
from core.settings import Settings
from providers.base import BlockingPool, Provider


def _discover() -> dict[str, type[Provider]]:
    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"providers.{module.name}")
    return dict(sorted(Provider.registered.items()))


PROVIDERS: dict[str, type[Provider]] = _discover()


def build(name: str, settings: Settings, pool: BlockingPool | None = None) -> Provider:
    try:
        kind = PROVIDERS[name]
    except KeyError as err:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}") from err
    return kind.from_settings(settings, pool or BlockingPool(settings.provider_threads))
