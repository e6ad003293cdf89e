"""Provider name -> factory. Adding a provider adds one line here; bad config fails at boot."""

from __future__ import annotations

from collections.abc import Callable

from core.settings import Settings
from providers.base import BlockingPool, Provider
from providers.mailgun import MailgunProvider
from providers.sendgrid import SendGridProvider
from providers.ses import SesProvider
from providers.smtp import SmtpProvider

Factory = Callable[[Settings, BlockingPool], Provider]

FACTORIES: dict[str, Factory] = {
    "smtp": lambda s, _: SmtpProvider(s.smtp_host, s.smtp_port, username=s.smtp_username,
                                      password=s.smtp_password, tls=s.smtp_tls,
                                      pool_size=s.smtp_pool_size, timeout_s=s.smtp_timeout_s,
                                      ca_file=s.smtp_ca_file),
    "sendgrid": lambda s, pool: SendGridProvider(s.sendgrid_api_key, s.sendgrid_host, pool,
                                                 s.provider_timeout_s),
    "mailgun": lambda s, pool: MailgunProvider(s.mailgun_api_key, s.mailgun_domain,
                                               s.mailgun_base_url, pool, s.provider_timeout_s),
    "ses": lambda s, pool: SesProvider(s.ses_region, s.ses_endpoint_url, pool,
                                       s.provider_timeout_s),
}


def build(name: str, settings: Settings, pool: BlockingPool | None = None) -> Provider:
    try:
        factory = FACTORIES[name]
    except KeyError as err:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(FACTORIES)}") from err
    return factory(settings, pool or BlockingPool(settings.provider_threads))
