"""Jinja2 + Babel rendering: subject, HTML and text part of one email.

One autoescaping environment per locale, built once and cached with its compiled templates;
Babel locale objects and currency precisions are cached too (they dominate render time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from flowmail.settings import PROJECT_ROOT
from flowmail.vocab import RejectReason
from processors.commands import EmailCommand
from processors.errors import RejectedInput
from processors.validation import header_safe

TEMPLATE_DIR = PROJECT_ROOT / "templates"


def N_(message: str) -> str:  # noqa: N802 - the gettext marker Babel extracts
    return message


SHIPMENT_STATUS = {
    "LABEL_CREATED": N_("Shipping label created"), "IN_TRANSIT": N_("On its way"),
    "OUT_FOR_DELIVERY": N_("Out for delivery"), "DELIVERED": N_("Delivered"),
    "EXCEPTION": N_("Delivery problem"), "RETURNED": N_("Returned to sender"),
    "UNKNOWN": N_("Status update"),
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    return Locale.parse(tag)


@lru_cache(maxsize=256)
def _precision(currency: str) -> int:
    return get_currency_precision(currency)


def safe_url(value: str | None) -> str:
    """Only http(s) links reach a template; anything else (javascript:, data:) becomes '#'."""
    if not value:
        return "#"
    return value if urlsplit(str(value)).scheme in {"http", "https"} else "#"


def _environment(locale: str, template_dir: Path) -> Environment:
    env = Environment(loader=FileSystemLoader(template_dir),
                      autoescape=select_autoescape(["html"], default_for_string=False),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                      trim_blocks=False, lstrip_blocks=False, auto_reload=False)
    translations = Translations.load(template_dir / "locale", [locale], domain="messages")
    if not isinstance(translations, Translations):
        translations = NullTranslations()
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    babel_locale = _locale(locale)

    def money(minor: int, currency: str) -> str:
        amount = Decimal(int(minor)).scaleb(-_precision(currency))
        return format_currency(amount, currency, locale=babel_locale)

    def date(value: Any) -> str:
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        elif isinstance(value, int):  # Avro date: days since the epoch
            value = dt.date(1970, 1, 1) + dt.timedelta(days=value)
        return format_date(value, format="long", locale=babel_locale)

    def datetime(value: Any) -> str:
        if isinstance(value, int | float):
            value = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        elif isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return format_datetime(value, format="medium", tzinfo=dt.UTC, locale=babel_locale)

    def status_label(status: str) -> str:
        return translations.gettext(SHIPMENT_STATUS.get(status, SHIPMENT_STATUS["UNKNOWN"]))

    env.filters.update(money=money, date=date, datetime=datetime, safe_url=safe_url,
                       number=lambda n: format_decimal(n, locale=babel_locale))
    env.globals["status_label"] = status_label
    env.globals["html_lang"] = locale.replace("_", "-")
    return env


class Renderer:
    """Renders commands; environments are created on first use per locale and kept."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR) -> None:
        self.template_dir = template_dir
        self._envs: dict[str, Environment] = {}

    def env(self, locale: str) -> Environment:
        env = self._envs.get(locale)
        if env is None:
            env = self._envs[locale] = _environment(locale, self.template_dir)
        return env

    def render(self, command: EmailCommand) -> RenderedEmail:
        env = self.env(command.locale)
        folder = command.email_type.value
        context = dict(command.template_data)
        try:
            subject = env.get_template(f"{folder}/subject.txt").render(context).strip()
            context["subject"] = subject
            html = env.get_template(f"{folder}/body.html").render(context)
            text = env.get_template(f"{folder}/body.txt").render(context)
        except (TemplateError, KeyError, TypeError, ValueError) as err:
            raise RejectedInput(RejectReason.RENDER_FAILED,
                                f"{folder}/{command.locale}: {type(err).__name__}: {err}") from err
        return RenderedEmail(header_safe("subject", subject), html, text)
