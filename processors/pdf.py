"""Invoice and order PDFs (ReportLab), localized with the email's catalog and Babel formats.

Why ReportLab and not fpdf2: fpdf2 parsed and subset the TrueType font again for every
document (25 ms a Latin PDF, about 300 ms a Japanese or Chinese one, most of the worker's
CPU in the benchmark). ReportLab parses each font once per process and builds the subset of
a document from it: 1 ms (standard font) to 4 ms (CJK) a PDF.

Fonts come with the project, so no system package decides whether a PDF can be made: text
that fits Windows-1252 uses the PDF standard font Helvetica (nothing embedded); other
Latin-script, Greek and Cyrillic text embeds a subset of DejaVu Sans vendored in
``templates/fonts/``; Japanese and Chinese use the PDF standard CJK fonts (HeiseiKakuGo-W5,
STSong-Light: nothing embedded, every PDF reader brings them). Measured here: a Japanese
invoice is 2.4 KB and 1.6 ms with the standard CJK font, against 40-60 KB and 4 ms with an
embedded WenQuanYi subset, and needs no 5 MB font file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from core.settings import TEMPLATE_DIR
from processors.pdf_standard import StandardFontCanvas


def N_(message: str) -> str:  # noqa: N802 - the gettext marker Babel extracts
    return message


LABELS = {
    "invoice": N_("Invoice"), "order": N_("Order confirmation"), "number": N_("Number"),
    "date": N_("Date"), "due": N_("Due date"), "bill_to": N_("Bill to"),
    "ship_to": N_("Ship to"), "description": N_("Description"), "qty": N_("Qty"),
    "unit_price": N_("Unit price"), "amount": N_("Amount"), "net": N_("Net"), "tax": N_("Tax"),
    "subtotal": N_("Subtotal"), "shipping": N_("Shipping"), "total": N_("Total"),
}
LATIN_FONT = TEMPLATE_DIR / "fonts" / "DejaVuSans.ttf"
STANDARD_FONT = "Helvetica"
# PDF standard CJK fonts by locale; Japanese kana in any locale's text picks the Japanese one
CJK_FONTS = {"ja": "HeiseiKakuGo-W5", "zh_Hans": "STSong-Light"}
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_KANA = re.compile("[\u3040-\u30ff]")
# Babel's narrow no-break space (fr, for one) is not in Windows-1252; the plain one is.
_TO_1252 = str.maketrans({"\u202f": "\u00a0"})

# Flate alone: ASCII85 on top makes streams a quarter larger and costs CPU, for 7-bit
# transports nobody uses (MIME base64-encodes the attachment anyway).
rl_config.useA85 = 0

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 15 * mm
COLUMN_WIDTHS = (95 * mm, 20 * mm, 35 * mm, 35 * mm)
HEADER_FILL = (228 / 255, 228 / 255, 231 / 255)
LINE = 5 * mm


@dataclass(frozen=True)
class Formatters:
    gettext: Callable[[str], str]
    money: Callable[[int, str], str]
    date: Callable[[Any], str]
    number: Callable[[int], str]


@dataclass(frozen=True)
class Document:
    """What a PDF says, before any font or position is chosen."""

    title: str
    postal_address: str
    facts: list[str]
    header: list[str]
    rows: list[list[str]]
    totals: list[tuple[str, str]]

    def texts(self) -> Iterable[str]:
        yield self.title
        yield self.postal_address
        yield from self.facts
        yield from self.header
        for row in self.rows:
            yield from row
        for label, value in self.totals:
            yield label
            yield value


@lru_cache(maxsize=1)
def _latin() -> str:
    """Register the vendored DejaVu subset once per process; its name for ``setFont``."""
    pdfmetrics.registerFont(TTFont("flowmail-latin", str(LATIN_FONT)))
    return "flowmail-latin"


@lru_cache(maxsize=4)
def _cjk(name: str) -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name


def warm_fonts() -> None:
    """Register every font now, so the first PDF of each script costs no font parsing."""
    _latin()
    for name in CJK_FONTS.values():
        _cjk(name)


def choose_font(locale: str, texts: Iterable[str]) -> tuple[str, bool]:
    """(font name, whether text must be mapped to Windows-1252 first).

    CJK text (a Japanese name in a German order, too) takes a CJK font; then Windows-1252
    text takes Helvetica; anything else the vendored DejaVu subset."""
    joined = "\n".join(texts)
    if locale in CJK_FONTS or _CJK.search(joined):
        japanese = locale == "ja" or (locale not in CJK_FONTS and _KANA.search(joined))
        return _cjk(CJK_FONTS["ja" if japanese else "zh_Hans"]), False
    try:
        joined.translate(_TO_1252).encode("cp1252")
    except UnicodeEncodeError:
        return _latin(), False
    return STANDARD_FONT, True


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line breaking by words; a word wider than the line (CJK has no spaces) breaks
    between characters."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if pdfmetrics.stringWidth(paragraph, font, size) <= width:  # most lines fit whole
            lines.append(paragraph)
            continue
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if pdfmetrics.stringWidth(candidate, font, size) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for char in word:
                if pdfmetrics.stringWidth(current + char, font, size) > width and current:
                    lines.append(current)
                    current = ""
                current += char
        lines.append(current)
    return lines


class PageWriter:
    """A cursor down A4 pages; a new page starts when the next line would not fit. Fonts
    no document embeds are drawn by processors/pdf_standard; the DejaVu subset by ReportLab."""

    def __init__(self, font: str, to_1252: bool) -> None:
        self.buffer = io.BytesIO()
        self.canvas: Canvas | StandardFontCanvas = (
            Canvas(self.buffer, pagesize=A4, pageCompression=1, invariant=1)
            if font == _latin() else StandardFontCanvas(self.buffer, font, A4))
        self.font, self.to_1252 = font, to_1252
        self.y = PAGE_HEIGHT - MARGIN
        self.size = 10.0
        self.canvas.setFont(font, self.size)

    def text(self, value: str) -> str:
        return value.translate(_TO_1252) if self.to_1252 else value

    def set_size(self, size: float) -> None:
        self.size = size
        self.canvas.setFont(self.font, size)

    def need(self, height: float) -> None:
        if self.y - height < MARGIN:
            self.canvas.showPage()
            self.canvas.setFont(self.font, self.size)
            self.y = PAGE_HEIGHT - MARGIN

    def line(self, value: str, height: float = LINE) -> None:
        for part in wrap(self.text(value), self.font, self.size, PAGE_WIDTH - 2 * MARGIN):
            self.need(height)
            self.y -= height
            self.canvas.drawString(MARGIN, self.y, part)

    def gap(self, height: float) -> None:
        self.y -= height

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        for index, cells in enumerate([header, *rows]):
            cells = [self.text(c) for c in cells]
            first = wrap(cells[0], self.font, self.size, COLUMN_WIDTHS[0] - 2 * mm)
            height = LINE * len(first) + 2 * mm
            self.need(height)
            top = self.y
            if index == 0:
                self.canvas.setFillColorRGB(*HEADER_FILL)
                self.canvas.rect(MARGIN, top - height, sum(COLUMN_WIDTHS), height, stroke=0,
                                 fill=1)
                self.canvas.setFillColorRGB(0, 0, 0)
            baseline = top - LINE + 0.5 * mm
            for number, part in enumerate(first):
                self.canvas.drawString(MARGIN + 1 * mm, baseline - number * LINE, part)
            right = MARGIN + COLUMN_WIDTHS[0]
            for width, cell in zip(COLUMN_WIDTHS[1:], cells[1:], strict=True):
                right += width
                self.canvas.drawRightString(right - 1 * mm, baseline, cell)
            self.canvas.setStrokeColorRGB(0.8, 0.8, 0.8)
            self.canvas.line(MARGIN, top - height, MARGIN + sum(COLUMN_WIDTHS), top - height)
            self.y = top - height

    def totals(self, lines: list[tuple[str, str]]) -> None:
        self.gap(3 * mm)
        right = MARGIN + sum(COLUMN_WIDTHS)
        for label, value in lines:
            self.need(6 * mm)
            self.y -= 6 * mm
            self.canvas.drawRightString(right - 36 * mm, self.y, self.text(label))
            self.canvas.drawRightString(right - 1 * mm, self.y, self.text(value))

    def bars(self, items: list[tuple[str, float, str]], colour: tuple[float, float, float]
             ) -> None:
        """A horizontal bar chart: (label, share of the widest bar 0..1, value shown)."""
        width = sum(COLUMN_WIDTHS) - COLUMN_WIDTHS[0] - 25 * mm
        for label, share, shown in items:
            self.need(LINE + 1 * mm)
            self.y -= LINE + 1 * mm
            self.canvas.drawString(MARGIN + 1 * mm, self.y, self.text(label)[:40])
            self.canvas.setFillColorRGB(*colour)
            self.canvas.rect(MARGIN + COLUMN_WIDTHS[0], self.y - 0.5 * mm,
                             max(0.5 * mm, width * min(max(share, 0.0), 1.0)), 3.5 * mm,
                             stroke=0, fill=1)
            self.canvas.setFillColorRGB(0, 0, 0)
            self.canvas.drawRightString(MARGIN + sum(COLUMN_WIDTHS) - 1 * mm, self.y,
                                        self.text(shown))

    def finish(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def render(document: Document, locale: str) -> bytes:
    font, to_1252 = choose_font(locale, document.texts())
    writer = PageWriter(font, to_1252)
    writer.set_size(16)
    writer.line(document.title, height=8 * mm)
    writer.set_size(10)
    writer.line(document.postal_address)
    writer.gap(4 * mm)
    for fact in document.facts:
        writer.line(fact)
    writer.gap(4 * mm)
    writer.table(document.header, document.rows)
    writer.totals(document.totals)
    return writer.finish()


def _rows(lines: list[dict[str, Any]], name: str, currency: str, fmt: Formatters
          ) -> list[list[str]]:
    return [[line[name], fmt.number(line["quantity"]),
             fmt.money(line["unit_price_minor"], currency),
             fmt.money(line["unit_price_minor"] * line["quantity"], currency)]
            for line in lines]


def _header(fmt: Formatters) -> list[str]:
    return [fmt.gettext(LABELS[k]) for k in ("description", "qty", "unit_price", "amount")]


def invoice_pdf(data: dict[str, Any], locale: str, fmt: Formatters) -> bytes:
    """The invoice of an ``invoice.issued`` email."""
    _ = fmt.gettext
    shop, customer, currency = data["shop"], data["customer"], data["currency"]
    return render(Document(
        title=f"{shop['name']} · {_(LABELS['invoice'])}",
        postal_address=shop.get("postal_address") or "",
        facts=[f"{_(LABELS['number'])}: {data['invoice_id']}",
               f"{_(LABELS['due'])}: {fmt.date(data['due_date'])}",
               f"{_(LABELS['bill_to'])}: {customer['first_name']} {customer['last_name']}"],
        header=_header(fmt), rows=_rows(data["lines"], "description", currency, fmt),
        totals=[(_(LABELS["net"]), fmt.money(data["net_minor"], currency)),
                (_(LABELS["tax"]), fmt.money(data["tax_minor"], currency)),
                (_(LABELS["total"]), fmt.money(data["total_minor"], currency))]), locale)


def order_pdf(data: dict[str, Any], locale: str, fmt: Formatters) -> bytes:
    """The order confirmation document attached to an ``order.placed`` email."""
    _ = fmt.gettext
    shop, address, currency = data["shop"], data["shipping_address"], data["currency"]
    ship_to = [x for x in (address["name"], address["line1"], address.get("line2"),
                           f"{address['postal_code']} {address['city']}", address["country"])
               if x]
    return render(Document(
        title=f"{shop['name']} · {_(LABELS['order'])}",
        postal_address=shop.get("postal_address") or "",
        facts=[f"{_(LABELS['number'])}: {data['order_id']}", f"{_(LABELS['ship_to'])}:",
               *ship_to],
        header=_header(fmt), rows=_rows(data["items"], "name", currency, fmt),
        totals=[(_(LABELS["subtotal"]), fmt.money(data["subtotal_minor"], currency)),
                (_(LABELS["shipping"]), fmt.money(data["shipping_minor"], currency)),
                (_(LABELS["tax"]), fmt.money(data["tax_minor"], currency)),
                (_(LABELS["total"]), fmt.money(data["total_minor"], currency))]), locale)
