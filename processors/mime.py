"""RFC 5322 / MIME serialization of one composed email, written straight to bytes.

Why not ``email.message.EmailMessage``: its header registry parses every header it is given
and its generator folds them again; for our fixed shape (text + HTML, maybe PDFs) that was a
third of the worker's CPU in the benchmark (3 ms an email). Here each value is encoded once
with the standard library's encoders (``email.header``, ``binascii``, ``base64``), and the
result is proven by parsing it back with the email package in the tests.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from email.header import Header
from email.utils import formataddr
from urllib.parse import quote

CRLF = b"\r\n"
_ASCII = bytes(range(128))


# charset ? encoding ? text ?=, as a reader finds an encoded word (loosely: empty parts too)
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
MAX_LINE = 998  # RFC 5322 2.1.1: bytes in a line, without its CRLF
SOFT_LINE = 78  # RFC 5322 2.1.1: a line SHOULD be at most this long
LINE = 76  # RFC 2047: a line with encoded words is at most 76 characters
WORD_BYTES = 45  # UTF-8 bytes in one base64 word: 12 + 60 characters, with its fold space


def text_header(name: str, value: str) -> str:
    """Unstructured header: as is when short ASCII, else RFC 2047 encoded words, folded.
    ASCII with an encoded word's shape in it (``=?utf-8?b?...?=``) is encoded too: a reader
    would decode it and show something else (RFC 2047 5)."""
    plain = value.isascii() and value.isprintable() and (
        "=?" not in value or _ENCODED_WORD.search(value) is None)
    if plain and len(name) + len(value) < LINE:
        return f"{name}: {value}"
    if plain and len(name) + len(value) < MAX_LINE - 2:  # long ASCII: folded at its spaces
        return _folded(f"{name}: {value}")
    if plain:
        folded = Header(value, "us-ascii", header_name=name).encode(linesep="\r\n")
        return f"{name}: {folded}"
    return f"{name}: {encoded_words(value, first_line_room=LINE - len(name) - 2)}"


def _folded(field: str) -> str:
    """RFC 5322 2.2.3 folding of an ASCII header field: a space before a word that would pass
    78 characters becomes CRLF + space, so unfolding gives the value back exactly; no line
    is only spaces or only the field's name, and a word longer than a line stays whole (the
    caller keeps the field under 998 bytes). What ``email.header.Header`` did, at a tenth of
    the cost (a twentieth of building an email, profiled: List-Unsubscribe is over the limit
    in every marketing email)."""
    words = field.split(" ")
    lines, current = [], words[0]
    for word in words[1:]:
        if word and len(current) + 1 + len(word) > SOFT_LINE and current != words[0]:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return "\r\n".join(lines)


def encoded_words(value: str, first_line_room: int = LINE) -> str:
    """RFC 2047 "B" encoded words of UTF-8, never splitting a character, one per folded
    line. The standard library's ``email.header`` picks quoted-printable and measures it a
    byte at a time: half a millisecond for a German subject line, a quarter of the CPU of a
    password reset (profiled in the critical lane)."""
    words, chunk, size = [], [], 0
    budget = max(3, (first_line_room - 12) // 4 * 3)  # bytes that fit the first line
    for char in value:
        width = len(char.encode())
        if size + width > budget and chunk:
            words.append(_b_word("".join(chunk)))
            chunk, size, budget = [], 0, WORD_BYTES
        chunk.append(char)
        size += width
    words.append(_b_word("".join(chunk)))
    return "\r\n ".join(words)


def _b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def address_header(name: str, display_name: str, address: str) -> str:
    """``Name <addr>``: ASCII names quoted as needed, others as encoded words. A non-ASCII
    address stays raw UTF-8 (RFC 6532; SMTP then needs SMTPUTF8)."""
    if not display_name:
        return f"{name}: {address}"
    if display_name.isascii() and display_name.isprintable():
        return f"{name}: {formataddr((display_name, address))}"
    return f"{name}: {encoded_words(display_name, LINE - len(name) - 2)} <{address}>"


def _crlf(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n", "\r\n")


def _lines(text: str) -> bytes:
    return _crlf(text).encode()


def text_part(subtype: str, text: str) -> bytes:
    """7bit as it is when RFC 2045 allows (ASCII, no NUL, lines of at most 998 bytes) and
    nothing in it looks like a boundary; else quoted-printable for mostly-ASCII text and
    base64 when that is shorter (CJK). Quoted-printable of ASCII that needs none was a
    tenth of building a message (profiled)."""
    data = _lines(text)
    if text.isascii() and _seven_bit(data):
        return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + data
    non_ascii = 0 if text.isascii() else len(data.translate(None, _ASCII))
    if non_ascii * 6 > len(data):
        body = base64.encodebytes(data).replace(b"\n", CRLF)
        encoding = "base64"
    else:
        body = binascii.b2a_qp(data, istext=True)
        encoding = "quoted-printable"
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode() + body


# elements whose text an HTML parser reads raw, character references included
# (searched in the lowered text: twice as fast as re.IGNORECASE)
_RAW_TEXT = re.compile(rb"<(?:script|style|xmp|iframe|noembed|noframes|noscript|plaintext)\b")


def html_part(html: str) -> bytes:
    """HTML's own escape for what is not ASCII: ``ü`` as ``&#252;``, which every HTML parser
    reads back, so the part is 7bit instead of quoted-printable (whose ``=3D`` for every
    attribute's ``=`` and soft breaks made it larger, and which cost 15-30 µs an email, a
    twentieth of the mix's worker CPU, profiled). Not where a parser would show the
    reference as text (inside ``<style>``, ``<script>`` and the like), nor for mostly
    non-ASCII text (CJK), whose base64 is smaller: those go as ``text_part`` sends them."""
    if html.isascii():
        return text_part("html", html)
    data = _crlf(html).encode("ascii", "xmlcharrefreplace")
    if len(data) * 3 > len(html.encode()) * 4 or _RAW_TEXT.search(data.lower()) \
            or not _seven_bit(data):
        return text_part("html", html)
    return (b'Content-Type: text/html; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: 7bit\r\n\r\n") + data


def _seven_bit(data: bytes) -> bool:
    """ASCII ``data`` in CRLF lines that 7bit may carry unchanged: no NUL, no line over 998
    bytes, and no ``--=_`` (boundaries start with it, see ``multipart``)."""
    if b"\0" in data or b"--=_" in data:
        return False
    if len(data) <= MAX_LINE:
        return True
    return max(map(len, data.split(CRLF))) <= MAX_LINE


def attachment_part(filename: str, mime_type: str, content: bytes) -> bytes:
    if filename.isascii() and not any(ch in filename for ch in '"\\'):
        disposition = f'attachment; filename="{filename}"'
    else:  # RFC 2231
        disposition = f"attachment; filename*=utf-8''{quote(filename, safe='')}"
    return (f"Content-Type: {mime_type}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + \
        base64.encodebytes(content).replace(b"\n", CRLF)


def multipart(subtype: str, boundary: str, parts: Iterable[bytes]) -> bytes:
    """``boundary`` must start with ``=_``: it can then occur in neither quoted-printable nor
    base64 bodies, and 7bit ones are checked for it (``_seven_bit``)."""
    edge = f"--{boundary}".encode()
    body = b"".join(edge + CRLF + part + CRLF for part in parts)
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n').encode() + \
        body + edge + b"--" + CRLF


def message_bytes(header_lines: list[str], text: str, html: str,
                  attachments: Iterable[tuple[str, str, bytes]], boundary_seed: str) -> bytes:
    alternative = multipart("alternative", f"=_alt_{boundary_seed}",
                            [text_part("plain", text), html_part(html)])
    files = [attachment_part(*item) for item in attachments]
    body = multipart("mixed", f"=_mix_{boundary_seed}", [alternative, *files]) if files \
        else alternative
    head = "\r\n".join([*header_lines, "MIME-Version: 1.0"]).encode() + CRLF
    return head + body
