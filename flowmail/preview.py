"""Previews of every email type in any locale, from the sample data shipped in the repo."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from core.avro import file_schemas
from core.catalogue import BY_EMAIL_TYPE, EmailType
from flowmail.publisher import from_json
from processors.commands import EmailCommand
from processors.locales import SUPPORTED
from processors.rendering import RenderedEmail, Renderer
from processors.routing import fan_out_campaign, route

PREVIEW_PROFILE = {"user_id": "preview", "email": "preview@example.org", "first_name": "Alex",
                   "last_name": "Example", "locale": None, "country": None,
                   "marketing_opt_in": True, "tags": [], "partition": 0}


def campaign_preview_profile(campaign: dict[str, Any], locale: str) -> dict[str, Any]:
    """A customer of the campaign's shop who is in its segment, whatever the segment says."""
    segment = campaign.get("segment") or {}
    countries, tags = segment.get("countries") or [], segment.get("tags_any") or []
    return {**PREVIEW_PROFILE, "shop_id": campaign["shop"]["shop_id"],
            "locale": (segment.get("locales") or [locale])[0],
            "country": countries[0] if countries else None, "tags": tags[:1]}


def example_event(email_type: EmailType) -> dict[str, Any]:
    return BY_EMAIL_TYPE[email_type].example()


def preview_command(email_type: EmailType, locale: str,
                    event: dict[str, Any] | None = None) -> EmailCommand:
    """Route the event (or the shipped example) and force the locale; raises like routing."""
    declared = BY_EMAIL_TYPE[email_type]
    topic = declared.topic
    schema = file_schemas().reader(declared.subject).parsed
    record = from_json(schema, event or example_event(email_type))
    if email_type is EmailType.PASSWORD_RESET:  # the example must not expire for a preview
        record["expires_at"] = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    file_schemas().encode(declared.subject, record)  # the schema check, naming the field
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    if email_type is EmailType.MARKETING_CAMPAIGN:
        profile = campaign_preview_profile(record, locale)
        commands, _ = fan_out_campaign(record, topic, [profile], now, now, b"preview")
    else:
        commands = route(topic, record, now, now, lambda _s, _u: PREVIEW_PROFILE)
    if not commands:  # routing decided this event sends nothing (no recipient in it)
        raise ValueError(f"the {topic} event yields no {email_type.value} email to preview")
    command = commands[0]
    object.__setattr__(command, "locale", locale)  # frozen dataclass: a preview-only override
    return command


def render_preview(renderer: Renderer, email_type: EmailType, locale: str,
                   event: dict[str, Any] | None = None) -> RenderedEmail:
    if locale not in SUPPORTED:
        raise ValueError(f"locale {locale!r} is not one of {', '.join(SUPPORTED)}")
    return renderer.render(preview_command(email_type, locale, event))


def write_preview(rendered: RenderedEmail, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "subject.txt", out / "body.txt", out / "body.html"]
    written[0].write_text(rendered.subject + "\n")
    written[1].write_text(rendered.text)
    written[2].write_text(rendered.html)
    for attachment in rendered.attachments:
        (out / attachment.filename).write_bytes(attachment.content)
        written.append(out / attachment.filename)
    return written


def preview_page(rendered: RenderedEmail, email_type: EmailType, locale: str) -> str:
    """HTML and text part side by side; the email itself sits in a sandboxed iframe."""
    links = " ".join(f'<a href="?locale={loc}"{" class=on" if loc == locale else ""}>{loc}</a>'
                     for loc in SUPPORTED)
    types = " ".join(f'<a href="/preview/{t.value}/?locale={locale}"'
                     f'{" class=on" if t is email_type else ""}>{t.value}</a>' for t in EmailType)
    attachments = ", ".join(html.escape(a.filename) for a in rendered.attachments) or "none"
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>flowmail preview: {email_type.value} ({locale})</title>
<style>body{{font-family:sans-serif;margin:16px}} a{{margin-right:8px}} a.on{{font-weight:bold}}
.panes{{display:flex;gap:16px}} iframe{{flex:3;height:900px;border:1px solid #ccc}}
pre{{flex:2;white-space:pre-wrap;border:1px solid #ccc;padding:8px;margin:0}}</style></head>
<body><nav>{types}</nav><nav>{links}</nav>
<h1 id="subject">{html.escape(rendered.subject)}</h1><p>attachments: {attachments}</p>
<div class="panes"><iframe id="html-part" sandbox title="HTML part"
src="/preview/{email_type.value}/html/?locale={locale}"></iframe>
<pre id="text-part">{html.escape(rendered.text)}</pre></div></body></html>"""
