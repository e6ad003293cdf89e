import email
import email.policy
from html import unescape

import pytest

from core.vocab import RejectReason
from flowmail.samples import order_placed
from processors.errors import RejectedInput
from processors.message import IDEMPOTENCY_HEADER, build_message
from processors.rendering import Renderer, safe_url
from processors.routing import route

NOW = 1_800_000_000_000
RENDERER = Renderer()


def command_for(index, **customer):
    event = order_placed(index)
    event["customer"].update(customer)
    return route("order.placed", event, NOW, NOW)[0]


def test_german_order_formats_money_and_dates_the_german_way():
    command = command_for(1)
    command.template_data["items"] = [{"sku": "X", "name": "Zelt", "quantity": 1,
                                       "unit_price_minor": 123456}]
    command.template_data["estimated_delivery"] = "2026-12-02"
    rendered = RENDERER.render(command)
    assert "1.234,56\xa0€" in unescape(rendered.html) and "1.234,56\xa0€" in rendered.text
    assert "2. Dezember 2026" in rendered.text


def test_japanese_yen_has_no_minor_unit():
    command = command_for(6)
    command.template_data["total_minor"] = 2999
    assert "￥2,999" in RENDERER.render(command).text


def test_customer_name_is_escaped_in_html_and_harmless_in_text():
    command = command_for(0, first_name="<script>alert(1)</script>")
    rendered = RENDERER.render(command)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text  # text/plain is not interpreted


def test_only_http_links_survive():
    assert safe_url("javascript:alert(1)") == "#"
    assert safe_url("data:text/html,x") == "#"
    assert safe_url("https://shop.example/o/1") == "https://shop.example/o/1"
    command = command_for(0)
    command.template_data["tracking_url"] = "javascript:alert(1)"
    assert "javascript:" not in RENDERER.render(command).html


def test_subject_with_line_break_is_rejected():
    command = command_for(0)
    command.template_data["order_id"] = "SF-1\r\nBcc: victim@example.org"
    with pytest.raises(RejectedInput) as err:
        RENDERER.render(command)
    assert err.value.reason is RejectReason.HEADER_INJECTION


def test_missing_template_data_is_a_render_failure():
    command = command_for(0)
    del command.template_data["items"]
    with pytest.raises(RejectedInput) as err:
        RENDERER.render(command)
    assert err.value.reason is RejectReason.RENDER_FAILED


def test_message_has_deterministic_id_both_parts_and_language():
    command = command_for(3)
    message = build_message(command, RENDERER.render(command), "Shop <no-reply@shop.example>")
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == f"<{command.idempotency_key}@shop.example>"
    assert parsed[IDEMPOTENCY_HEADER] == command.idempotency_key
    assert parsed["Content-Language"] == "es"
    assert parsed.get_body(("plain",)) is not None and parsed.get_body(("html",)) is not None
    assert parsed["To"].addresses[0].addr_spec == command.recipient


def test_a_template_set_with_a_style_sheet_gets_its_css_inlined(tmp_path):
    """flowmail's own templates style inline and go out as rendered; a template set that
    brings a <style> block has it inlined into the elements, and the block removed."""
    import shutil

    from core.settings import TEMPLATE_DIR

    shipped = RENDERER.render(command_for(1)).html
    assert shipped.startswith("<!DOCTYPE html>\n<html") and "<tbody>" not in shipped
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    layout = templates / "_layout.html"
    layout.write_text(layout.read_text().replace(
        "</head>", "<STYLE>h1 { letter-spacing: 1px }</STYLE>\n</head>"))
    html = Renderer(template_dir=templates).render(command_for(1)).html
    assert "<style" not in html.lower() and "letter-spacing: 1px" in html
    assert "<h1 style=\"" in html
