"""``flowmail selfcheck``: proves an installation carries what it needs, with no stack.

Renders every email type in every locale (templates, catalogs, fonts, PDFs) and round-trips
every schema example through Avro. Run in an image or a fresh venv, away from a checkout.
"""

from __future__ import annotations

from collections.abc import Iterator

from core.avro import file_schemas
from core.catalogue import CATALOGUE, EmailType
from flowmail.preview import render_preview
from flowmail.publisher import from_json
from processors.locales import SUPPORTED
from processors.rendering import Renderer


def check() -> Iterator[str]:
    """One line per check; raises on the first failure."""
    renderer = Renderer()
    for email_type in EmailType:
        for locale in SUPPORTED:
            rendered = render_preview(renderer, email_type, locale)
            assert rendered.subject and rendered.html and rendered.text, (email_type, locale)
            pdfs = "".join(f", {a.filename} {len(a.content)} B" for a in rendered.attachments)
            yield f"rendered {email_type.value}/{locale}{pdfs}"
    schemas = file_schemas()
    for declared in CATALOGUE:
        topic, subject = declared.topic, declared.subject
        record = from_json(schemas.latest(subject).parsed, declared.example())
        decoded = schemas.decode(subject, schemas.encode(subject, record))
        assert decoded.get("event_id") == record.get("event_id"), topic
        yield f"decoded {topic} example"

