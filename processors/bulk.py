"""Bulk marketing: one rendering per (campaign, variant, locale), per-recipient values
filled in by the provider (SendGrid substitutions, Mailgun recipient-variables).

Per-recipient values are HTML-escaped before they leave us, because the provider pastes
them into the HTML part verbatim (in the text part an ``&amp;`` stays visible: a trade for
rendering 1,000 recipients at the cost of one).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from typing import Any

from flowmail.vocab import EmailType
from processors.commands import EmailCommand
from processors.rendering import RenderedEmail, Renderer

# the per-recipient fields of a campaign email
PERSONAL = ("first_name", "token")


@dataclass(frozen=True)
class BulkRecipient:
    command: EmailCommand
    values: dict[str, str]


@dataclass
class BulkMessage:
    """One rendered email with placeholders, and the recipients that fill them in."""

    rendered: RenderedEmail
    recipients: list[BulkRecipient] = field(default_factory=list)


def group_key(command: EmailCommand) -> tuple[str, str, str]:
    return (command.source_event_id, command.template_data["variant"]["variant_id"],
            command.locale)


def personal_values(command: EmailCommand) -> dict[str, str]:
    data = command.template_data
    token = data["unsubscribe_url"].partition("token=")[2]
    return {"first_name": html.escape(data.get("first_name") or ""), "token": token}


def render_bulk(renderer: Renderer, commands: list[EmailCommand], placeholder: str
                ) -> BulkMessage:
    """``placeholder`` is a format string for a field name, e.g. ``%recipient.{}%``."""
    first = commands[0]
    if first.email_type is not EmailType.MARKETING_CAMPAIGN:
        raise ValueError("bulk rendering is for campaign mail")
    data = dict(first.template_data)
    base = data["unsubscribe_url"].partition("token=")[0]
    data["first_name"] = placeholder.format("first_name")
    data["unsubscribe_url"] = base + "token=" + placeholder.format("token")
    template = replace(first, template_data=data)
    return BulkMessage(renderer.render(template),
                       [BulkRecipient(c, personal_values(c)) for c in commands])


def group(commands: list[EmailCommand]) -> list[list[EmailCommand]]:
    groups: dict[tuple[str, str, str], list[EmailCommand]] = {}
    for command in commands:
        groups.setdefault(group_key(command), []).append(command)
    return list(groups.values())


def fill(text: str, placeholder: str, values: dict[str, Any]) -> str:
    """What the provider does; used by the fakes and the tests."""
    for name, value in values.items():
        text = text.replace(placeholder.format(name), str(value))
    return text
