"""Jinja2 + Babel rendering: subject, HTML (CSS inlined) and text part, plus PDF attachments.

One autoescaping environment per locale, built once with its compiled templates and catalog.
Text from outside the repo (campaign headline, body, subject) is rendered in an immutable
sandbox, then inserted as data, so it can use ``{{ first_name }}`` and nothing more.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    pass_eval_context,
    select_autoescape,
)
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from core.catalogue import EmailType
from core.settings import TEMPLATE_DIR
from core.vocab import RejectReason
from processors.commands import EmailCommand
from processors.daily_report import percent
from processors.errors import AttachmentFailed, RejectedInput
from processors.i18n import LocaleFormats, load_translations
from processors.jinja_fold import FoldingEnvironment
from processors.jinja_fold import render as render_template
from processors.locales import DEFAULT, SUPPORTED
from processors.pdf import Formatters, invoice_pdf, order_pdf, warm_fonts
from processors.report_pdf import report_pdf
from processors.skeleton import (
    SUBJECT,
    Hole,
    HoleMisuse,
    Parts,
    Skeleton,
    passing_holes,
    shape_of,
)
from processors.validation import header_safe

log = logging.getLogger(__name__)


def N_(message: str) -> str:  # noqa: N802 - the gettext marker Babel extracts
    return message


SHIPMENT_STATUS = {
    "LABEL_CREATED": N_("Shipping label created"), "IN_TRANSIT": N_("On its way"),
    "OUT_FOR_DELIVERY": N_("Out for delivery"), "DELIVERED": N_("Delivered"),
    "EXCEPTION": N_("Delivery problem"), "RETURNED": N_("Returned to sender"),
    "UNKNOWN": N_("Status update"),
}
# The inliner parses and re-serialises the whole document (120 µs an order confirmation):
# only HTML with a style sheet needs it. flowmail's own templates style every element
# inline already; a template set that brings a <style> block or a stylesheet link gets it.
_STYLE_SHEET = re.compile(r"<(?:style|link)\b", re.IGNORECASE)
PDF_OF = {EmailType.INVOICE: ("invoice-{invoice_id}.pdf", invoice_pdf),
          EmailType.ORDER_CONFIRMATION: ("order-{order_id}.pdf", order_pdf),
          EmailType.DAILY_REPORT: ("flowmail-report-{report_date}.pdf", report_pdf)}
# When a PDF cannot be made: an order confirmation still goes out (the email says it all; the
# delivery event and a metric record the missing document); an invoice, whose PDF is the
# document, is retried and then failed with an alert (AttachmentFailed).
PDF_OPTIONAL = frozenset({EmailType.ORDER_CONFIRMATION, EmailType.DAILY_REPORT})
MAX_SHAPES = 4096  # (type, locale, shop, which values are empty): cleared when full


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    attachments: tuple[Attachment, ...] = field(default=())
    missing_attachments: tuple[str, ...] = field(default=())  # optional PDFs that failed


def safe_url(value: str | None) -> str:
    """Only http(s) links reach a template; anything else (javascript:, data:) becomes '#'."""
    if not value:
        return "#"
    try:
        scheme = urlsplit(str(value)).scheme
    except ValueError:  # unbalanced [ or ] in the host
        return "#"
    return value if scheme in {"http", "https"} else "#"


@dataclass(frozen=True)
class LocaleKit:
    """Everything one locale renders with, built once."""

    env: FoldingEnvironment
    formats: LocaleFormats
    gettext: Callable[[str], str]
    globals: dict[str, Any]  # env.globals as one dict (processors/jinja_fold.render)


def _newstyle_gettext(translate: Callable[[str], str]) -> Callable[..., str]:
    """What jinja2.ext's newstyle gettext does (escape-aware, always a format string), with
    one call instead of three."""
    @pass_eval_context
    def gettext(eval_ctx: EvalContext, string: str, **variables: Any) -> str:
        translated: str = translate(string)
        if eval_ctx.autoescape:
            translated = Markup(translated)  # noqa: S704 - the catalog's text, as jinja2.ext; % escapes the values
        return translated % variables

    return gettext


def _environment(locale: str, template_dir: Path) -> LocaleKit:
    env = FoldingEnvironment(loader=FileSystemLoader(template_dir),
                             autoescape=select_autoescape(["html"], default_for_string=False),
                             undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                             # a plain dict, not Jinja2's LRU (a lock, and a deque moved on
                             # every lookup: 3-5 % of a render): the template set is fixed
                             auto_reload=False, cache_size=-1)
    translations = load_translations(template_dir / "locale", locale)
    env.translate = translations.gettext  # literal texts compiled in (jinja_fold)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    # ``_()`` as the newstyle gettext itself: Jinja2's alias and wrapper went through three
    # Context.call()s per translated string (a third of a shipping update's render)
    fast = _newstyle_gettext(translations.gettext)
    env.globals.update(gettext=fast, _=fast)
    formats = LocaleFormats(locale)
    env.filters.update({name: passing_holes(name, function) for name, function in (
        ("money", formats.money), ("date", formats.date), ("datetime", formats.datetime),
        ("number", formats.number), ("safe_url", safe_url), ("percent", percent))})
    env.globals["status_label"] = lambda status: translations.gettext(
        SHIPMENT_STATUS.get(status, SHIPMENT_STATUS["UNKNOWN"]))
    env.globals["html_lang"] = locale.replace("_", "-")
    return LocaleKit(env, formats, translations.gettext, dict(env.globals))


def _is_template(name: str) -> bool:
    return name.endswith((".html", ".txt")) and not name.startswith(("locale/", "fonts/"))


class Renderer:
    """Renders commands; environments are created on first use per locale and kept."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR, branding_file: Path | None = None,
                 on_locale_fallback: Callable[[str], None] | None = None,
                 pdf_types: frozenset[EmailType] = frozenset(PDF_OF)) -> None:
        self.pdf_types = pdf_types
        self.template_dir = template_dir
        self._kits: dict[str, LocaleKit] = {}
        branding = json.loads((branding_file or template_dir / "branding.json").read_text())
        self._brand_default = branding["_default"]
        self._brands = {k: {**self._brand_default, **v} for k, v in branding.items()
                        if not k.startswith("_")}
        self._on_fallback = on_locale_fallback or (lambda _: None)
        self._sandbox = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        self._inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
        # security mail's rendered shapes (processors/skeleton.py); False: render directly
        self._shapes: dict[tuple[Any, ...], Skeleton | Literal[False]] = {}

    def kit(self, locale: str) -> LocaleKit:
        if locale not in SUPPORTED:
            log.warning("locale %r is not supported; rendering in %s", locale, DEFAULT)
            self._on_fallback(locale)
            locale = DEFAULT
        found = self._kits.get(locale)
        if found is None:
            found = self._kits[locale] = _environment(locale, self.template_dir)
        return found

    def warm(self) -> None:
        """Compile every template (layouts and footers included) in every locale, load each
        locale's Babel data and the PDF fonts now, at start-up, instead of in the first
        emails: found cold in a profile of the critical lane, about 10 ms a first email."""
        for locale in SUPPORTED:
            kit = self.kit(locale)
            for name in kit.env.list_templates(filter_func=_is_template):
                kit.env.get_template(name)
            formats = kit.formats
            formats.money(1999, "EUR"), formats.number(1000)
            formats.date("2026-01-31"), formats.datetime(1_767_225_600_000)
        if self.pdf_types:
            warm_fonts()

    def render(self, command: EmailCommand) -> RenderedEmail:
        kit = self.kit(command.locale)
        folder = command.email_type.value
        try:
            parts = self._from_shape(kit, command) or self._direct(kit, command,
                                                                    command.template_data)
            attachments, missing = self._attachments(command, kit)
        except (RejectedInput, AttachmentFailed):
            raise
        except (TemplateError, SecurityError, KeyError, TypeError, ValueError) as err:
            raise RejectedInput(RejectReason.RENDER_FAILED,
                                f"{folder}/{command.locale}: {type(err).__name__}: {err}") from err
        return RenderedEmail(header_safe("subject", parts.subject), parts.html, parts.text,
                             attachments, missing)

    def _direct(self, kit: LocaleKit, command: EmailCommand, data: dict[str, Any],
                holed: bool = False) -> Parts:
        """``holed``: the data holds holes, and the HTML gets the subject's (a fill writes
        the stripped subject there, as here)."""
        env, folder = kit.env, command.email_type.value
        context = dict(data)
        context["brand"] = self._brands.get(command.shop_id, self._brand_default)
        if command.email_type is EmailType.MARKETING_CAMPAIGN:
            context["variant"] = self._sandboxed_variant(context)
        subject = render_template(env.get_template(f"{folder}/subject.txt"), context,
                                  kit.globals).strip()
        context["subject"] = Hole(SUBJECT) if holed else subject
        html = render_template(env.get_template(f"{folder}/body.html"), context, kit.globals)
        inlined = _STYLE_SHEET.search(html) is not None
        if inlined:
            html = self._inliner.inline(html)
        return Parts(subject, html, render_template(env.get_template(f"{folder}/body.txt"),
                                                    context, kit.globals), inlined)

    def _from_shape(self, kit: LocaleKit, command: EmailCommand) -> Parts | None:
        """Security mail: its shape's output filled in (processors/skeleton.py); None when
        the email is to be rendered directly."""
        shape = shape_of(command.email_type, command.locale, command.shop_id,
                         command.template_data)
        if shape is None:
            return None
        known = self._shapes.get(shape.key)
        if known is None:  # the first of its shape: rendered both ways, and compared
            direct = self._direct(kit, command, command.template_data)
            try:
                skeleton: Skeleton | None = Skeleton(self._direct(kit, command, shape.holed(),
                                                                  holed=True))
            except (TemplateError, HoleMisuse, TypeError, ValueError, KeyError):
                skeleton = None
            exact = skeleton is not None and skeleton.fill(shape.values,
                                                           kit.env.filters) == direct
            if not exact:
                log.warning("%s/%s: personal values are used in a way a fill cannot repeat; "
                            "rendered directly", command.email_type.value, command.locale)
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            self._shapes[shape.key] = skeleton if exact and skeleton else False
            return direct
        if known is False:
            return None
        return known.fill(shape.values, kit.env.filters)

    def _sandboxed_variant(self, context: dict[str, Any]) -> dict[str, Any]:
        variant = dict(context["variant"])
        values = {"first_name": context.get("first_name") or "", "shop": context["shop"]["name"]}
        for key in ("subject", "headline", "body_text", "cta_label"):
            variant[key] = self._campaign_template(variant[key]).render(values)
        return variant

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one renderer per process, kept for good
    def _campaign_template(self, source: str) -> Template:
        """A campaign's copy is the same for all its recipients: compile it once."""
        return self._sandbox.from_string(source)

    def _attachments(self, command: EmailCommand, kit: LocaleKit
                     ) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
        """(attachments, names of optional ones that could not be made)."""
        spec = PDF_OF.get(command.email_type)
        if spec is None or command.email_type not in self.pdf_types:
            return (), ()
        pattern, build = spec
        name = pattern.format(**command.template_data)
        fmt = Formatters(gettext=kit.gettext, money=kit.formats.money, date=kit.formats.date,
                         number=kit.formats.number)
        try:
            content = build(command.template_data, command.locale, fmt)
        except Exception as err:
            if command.email_type in PDF_OPTIONAL:
                log.warning("%s sent without %s: %s: %s", command.email_type.value, name,
                            type(err).__name__, err)
                return (), (name,)
            raise AttachmentFailed(f"{name}: {type(err).__name__}: {err}") from err
        return (Attachment(name, content),), ()
