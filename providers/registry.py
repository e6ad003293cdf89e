"""Provider name -> factory. Adding a provider adds one line here; bad config fails at boot."""

from __future__ import annotations

from collections.abc import Callable

from flowmail.settings import Settings
from providers.base import Provider
from providers.smtp import SmtpProvider

FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "smtp": lambda s: SmtpProvider(s.smtp_host, s.smtp_port, username=s.smtp_username,
                                   password=s.smtp_password, tls=s.smtp_tls,
                                   pool_size=s.smtp_pool_size, timeout_s=s.smtp_timeout_s),
}


def build(name: str, settings: Settings) -> Provider:
    try:
        factory = FACTORIES[name]
    except KeyError as err:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(FACTORIES)}") from err
    return factory(settings)
