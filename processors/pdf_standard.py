"""A canvas for PDFs whose text is all in one font every PDF reader has: Helvetica
(Windows-1252) or a PDF standard CJK font (HeiseiKakuGo-W5, STSong-Light; UTF-16).

Why not ReportLab's Canvas for these: such a document embeds no font program, so the file
is a fixed frame (catalog, page tree, one font dictionary) around each page's content
stream. ReportLab builds and formats that frame as Python objects for every document, which
was half of an invoice's 0.8 ms and 6 % of a worker's CPU in the benchmark's mix. This
class draws the same operators into the content stream and writes the frame directly. It
keeps ReportLab's (C-accelerated) font metrics and its CJK font dictionaries (formatted
once per process), and implements only the part of the Canvas interface
``processors.pdf.PageWriter`` uses. Documents that embed a font (the DejaVu subset) still go
through ReportLab.
"""

from __future__ import annotations

import copy
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import CIDFontInfo, UnicodeCIDFont, structToPDF
from reportlab.pdfbase.pdfdoc import PDFDocument

HEADER = b"%PDF-1.4\n%\x93\x8c\x8b\x9e\n"
# Positions are written in points to two decimals: a hundredth of a point is below what a
# printer shows. The painting operator for rect(stroke=, fill=):
_PAINT = {(0, 0): b"n", (1, 0): b"S", (0, 1): b"f", (1, 1): b"B"}


def _literal(raw: bytes) -> bytes:
    """The inside of a PDF literal string holding ``raw``."""
    return (raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
            .replace(b"\r", b"\\r"))


def _windows_1252(text: str) -> bytes:
    """WinAnsiEncoding; a character outside it (the caller maps what it can first) becomes
    '?' rather than failing the document."""
    return text.encode("cp1252", "replace")


def _utf_16(text: str) -> bytes:
    """The UCS-2 CMaps of the standard CJK fonts: UTF-16 big-endian, no byte order mark."""
    return text.encode("utf-16-be", "replace")


@dataclass(frozen=True)
class Face:
    """A font as the document names it: its dictionary, and how text becomes its codes."""

    dictionary: bytes
    encode: Callable[[str], bytes]


@lru_cache(maxsize=8)
def face(font: str) -> Face:
    """Helvetica and the other Type 1 standard fonts, or a registered standard CJK font
    (its dictionary formatted by ReportLab once, as ReportLab writes it in every document)."""
    registered = pdfmetrics.getFont(font)
    if isinstance(registered, UnicodeCIDFont):
        info = copy.deepcopy(CIDFontInfo[registered.face.name])
        info.pop("Name", None)
        info["Encoding"] = "/" + registered.encodingName
        return Face(structToPDF(info).format(PDFDocument()), _utf_16)
    return Face(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s "
                      b"/Encoding /WinAnsiEncoding >>" % font.encode(), _windows_1252)


class StandardFontCanvas:
    """``setFont``, ``drawString``, ``drawRightString``, ``setFillColorRGB``,
    ``setStrokeColorRGB``, ``rect``, ``line``, ``showPage`` and ``save``, as ReportLab's
    Canvas does them, for one font no document embeds."""

    def __init__(self, buffer: io.BytesIO, font: str, pagesize: tuple[float, float]) -> None:
        self._buffer, self._font, self._pagesize = buffer, font, pagesize
        self._face = face(font)
        self._size = 10.0
        self._ops: list[bytes] = []
        self._pages: list[bytes] = []

    def setFont(self, font: str, size: float) -> None:  # noqa: N802 - ReportLab's names
        if font != self._font:
            raise ValueError(f"this canvas draws in {self._font} only, not {font}")
        self._size = size

    def drawString(self, x: float, y: float, text: str) -> None:  # noqa: N802
        self._ops.append(b"BT /F1 %.2f Tf 1 0 0 1 %.2f %.2f Tm (%s) Tj ET" % (
            self._size, x, y, _literal(self._face.encode(text))))

    def drawRightString(self, x: float, y: float, text: str) -> None:  # noqa: N802
        self.drawString(x - pdfmetrics.stringWidth(text, self._font, self._size), y, text)

    def setFillColorRGB(self, r: float, g: float, b: float) -> None:  # noqa: N802
        self._ops.append(b"%.3f %.3f %.3f rg" % (r, g, b))

    def setStrokeColorRGB(self, r: float, g: float, b: float) -> None:  # noqa: N802
        self._ops.append(b"%.3f %.3f %.3f RG" % (r, g, b))

    def rect(self, x: float, y: float, width: float, height: float, stroke: int = 1,
             fill: int = 0) -> None:
        self._ops.append(b"%.2f %.2f %.2f %.2f re %s" % (
            x, y, width, height, _PAINT[(1 if stroke else 0, 1 if fill else 0)]))

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self._ops.append(b"%.2f %.2f m %.2f %.2f l S" % (x1, y1, x2, y2))

    def showPage(self) -> None:  # noqa: N802
        """End this page (a new one starts with the default colours, as in ReportLab)."""
        self._pages.append(zlib.compress(b"\n".join(self._ops)))
        self._ops = []

    def save(self) -> None:
        """Write the document: catalog 1, page tree 2, font 3, then each page and its
        content stream; the cross-reference table gives every object's byte offset."""
        if self._ops or not self._pages:
            self.showPage()
        width, height = self._pagesize
        kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(self._pages)))
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [ %s ] /Count %d >>" % (kids, len(self._pages)),
            self._face.dictionary]
        for index, content in enumerate(self._pages):
            objects.append(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 %.4f %.4f ] "
                b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                % (width, height, 5 + 2 * index))
            objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
                           % (len(content), content))
        out, offsets = [HEADER], []
        position = len(HEADER)
        for number, body in enumerate(objects, start=1):
            chunk = b"%d 0 obj\n%s\nendobj\n" % (number, body)
            offsets.append(position)
            out.append(chunk)
            position += len(chunk)
        out.append(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
        out.extend(b"%010d 00000 n \n" % offset for offset in offsets)
        out.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                   % (len(objects) + 1, position))
        self._buffer.write(b"".join(out))
