"""``flowmail selfcheck``: proves an installation carries what it needs, with no stack.

Renders every email type in every locale (templates, catalogs, fonts, PDFs) and round-trips
every schema example through Avro. Run in an image or a fresh venv, away from a checkout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from core.avro import registry, value_subject
from core.vocab import EmailType
from flowmail.preview import render_preview
from flowmail.publisher import from_json
from flowmail.samples import EXAMPLES
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
    schemas = registry()
    for path in sorted(EXAMPLES.glob("*.json")):
        topic = path.stem
        subject = value_subject(topic)
        record = from_json(schemas.latest(subject).parsed, json.loads(path.read_text()))
        decoded = schemas.decode(subject, schemas.encode(subject, record))
        assert decoded.get("event_id") == record.get("event_id"), topic
        yield f"decoded {topic} example"

