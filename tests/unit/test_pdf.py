"""The PDFs read back (pypdf) say what the email says: localized labels, amounts, names."""

import dataclasses
import datetime as dt
import io

import pytest
from pypdf import PdfReader

from flowmail.samples import invoice_issued, order_placed
from processors.pdf import STANDARD_FONT, choose_font, wrap
from processors.rendering import Renderer
from processors.routing import route

NOW_DT = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
RENDERER = Renderer()
LOCALES = ["en", "de", "fr", "es", "it", "pt_BR", "ja", "zh_Hans"]


def _pdf_text(content: bytes) -> tuple[str, int, set[str]]:
    reader = PdfReader(io.BytesIO(content), strict=True)
    fonts = set()
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    return "\n".join(p.extract_text() for p in reader.pages), len(reader.pages), fonts


def _command(topic, event, locale):
    [command] = route(topic, event, 1, 1)
    return dataclasses.replace(command, locale=locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_order_pdf_reads_back_in_every_locale(locale):
    event = order_placed(3, now=NOW_DT)
    command = _command("order.placed", event, locale)
    [attachment] = RENDERER.render(command).attachments
    text, pages, _ = _pdf_text(attachment.content)
    kit = RENDERER.kit(locale)
    assert pages == 1
    assert kit.gettext("Order confirmation") in text
    assert event["order_id"] in text
    assert event["items"][0]["name"] in text
    total = kit.formats.money(event["total_minor"], event["currency"])
    assert total.replace("\u202f", " ").replace("\xa0", " ") in \
        text.replace("\u202f", " ").replace("\xa0", " ")


def test_invoice_fonts_follow_the_text():
    latin = _command("invoice.issued", invoice_issued(1, NOW_DT), "de")
    _, _, fonts = _pdf_text(RENDERER.render(latin).attachments[0].content)
    assert fonts == {f"/{STANDARD_FONT}"}  # Windows-1252 text: nothing embedded
    polish = invoice_issued(1, NOW_DT)
    polish["customer"]["last_name"] = "Łukasiewicz"
    command = _command("invoice.issued", polish, "de")
    text, _, fonts = _pdf_text(RENDERER.render(command).attachments[0].content)
    assert "Łukasiewicz" in text and any("DejaVuSans" in f for f in fonts)
    japanese = _command("invoice.issued", invoice_issued(6, NOW_DT), "ja")
    text, _, fonts = _pdf_text(RENDERER.render(japanese).attachments[0].content)
    assert "請求書" in text and "/HeiseiKakuGo-W5" in fonts  # PDF standard CJK font
    chinese = _command("invoice.issued", invoice_issued(6, NOW_DT), "zh_Hans")
    text, _, fonts = _pdf_text(RENDERER.render(chinese).attachments[0].content)
    assert "发票" in text and "/STSong-Light" in fonts


def test_cjk_names_in_a_latin_locale_take_a_cjk_font():
    event = invoice_issued(1, NOW_DT)
    event["customer"]["last_name"] = "山田"
    event["customer"]["first_name"] = "はなこ"
    text, _, fonts = _pdf_text(RENDERER.render(_command("invoice.issued", event, "de"))
                               .attachments[0].content)
    assert "山田" in text and "はなこ" in text and "/HeiseiKakuGo-W5" in fonts
    event["customer"]["first_name"] = "伟"
    _, _, fonts = _pdf_text(RENDERER.render(_command("invoice.issued", event, "en"))
                            .attachments[0].content)
    assert "/STSong-Light" in fonts


def test_a_long_order_continues_on_a_second_page():
    event = order_placed(1, now=NOW_DT)
    event["items"] = [{**event["items"][0], "sku": f"S{i}", "name": f"Item number {i}"}
                      for i in range(60)]
    event["subtotal_minor"] = sum(i["quantity"] * i["unit_price_minor"] for i in event["items"])
    event["total_minor"] = event["subtotal_minor"] + event["shipping_minor"]
    text, pages, _ = _pdf_text(RENDERER.render(_command("order.placed", event, "en"))
                               .attachments[0].content)
    assert pages == 2
    assert "Item number 0" in text and "Item number 59" in text


def test_wrap_breaks_words_and_unspaced_text():
    font, _ = choose_font("en", ["plain"])
    assert wrap("a b c", font, 10, 1000) == ["a b c"]
    assert len(wrap("word " * 50, font, 10, 100)) > 5
    cjk, _ = choose_font("ja", [])
    lines = wrap("東" * 80, cjk, 10, 100)
    assert len(lines) > 5 and "".join(lines) == "東" * 80


def _broken_pdf(*_args):
    raise OSError("disk full while writing the PDF")


def test_an_order_confirmation_goes_out_without_a_pdf_that_cannot_be_made(monkeypatch):
    import processors.rendering as rendering
    pattern, _ = rendering.PDF_OF[rendering.EmailType.ORDER_CONFIRMATION]
    monkeypatch.setitem(rendering.PDF_OF, rendering.EmailType.ORDER_CONFIRMATION,
                        (pattern, _broken_pdf))
    event = order_placed(3, now=NOW_DT)
    rendered = RENDERER.render(_command("order.placed", event, "en"))
    assert rendered.attachments == ()
    assert rendered.missing_attachments == (f"order-{event['order_id']}.pdf",)
    assert event["order_id"] in rendered.text


def test_an_invoice_whose_pdf_cannot_be_made_is_a_transient_failure(monkeypatch):
    import processors.rendering as rendering
    from processors.errors import AttachmentFailed
    pattern, _ = rendering.PDF_OF[rendering.EmailType.INVOICE]
    monkeypatch.setitem(rendering.PDF_OF, rendering.EmailType.INVOICE, (pattern, _broken_pdf))
    with pytest.raises(AttachmentFailed, match="disk full"):
        RENDERER.render(_command("invoice.issued", invoice_issued(1, NOW_DT), "en"))


def test_the_standard_font_canvas_escapes_what_pdf_strings_cannot_hold():
    """Parentheses, backslashes and CR in a name come back as they were; a character
    Windows-1252 lacks (the caller maps the ones it can) becomes '?', not a failed PDF."""
    from processors.pdf import PageWriter
    writer = PageWriter(STANDARD_FONT, True)
    writer.line("Müller (GmbH) \\ back\rslash")
    writer.canvas.drawString(10, 10, "Łódź")
    content = writer.finish()
    reader = PdfReader(io.BytesIO(content), strict=True)
    text = reader.pages[0].extract_text()
    assert "Müller (GmbH) \\ back" in text and "?ód?" in text
    assert reader.pages[0]["/Resources"]["/Font"]["/F1"]["/BaseFont"] == "/Helvetica"
