"""Security mail rendered once per shape and filled in per recipient.

A password reset's templates (layout, body, subject, text part) took about 0.3 ms of Jinja2
and Babel, a third of the critical lane's CPU per email, and 200 of them arrive at once when
a campaign drains. Two resets of one shop and locale differ only in their personal values:
who they go to, the link, its expiry, the IP it came from. Here the templates run once per
*shape* with every personal value replaced by a hole (a token no escaping changes), and each
email is that output with its own values put in, escaped as the template would have.

What keeps it exact:

* a shape is everything but the personal values, compared whole (the rest of the template
  data as canonical JSON, the locale, the shop) plus which personal values are empty (a
  template may test them); any difference is another shape;
* the formatting filters (``datetime``, ``safe_url``...) record themselves on a hole and are
  applied to the real value at the fill; a hole used any other way (another filter, an
  argument, a string method) is left changed in the output, which the fill detects;
* the first email of each shape is also rendered directly and compared, byte for byte: a
  shape whose fill differs is never used again (the emails are rendered directly);
* ``tests/unit/test_skeleton.py`` holds every fill to the direct render over generated values
  (markup characters, quotes, spaces, empty and missing values) in every locale.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from core import json_text
from core.catalogue import EmailType

# the template data's personal fields, per email type rendered this way
PERSONAL: dict[EmailType, tuple[str, ...]] = {
    EmailType.PASSWORD_RESET: ("user", "reset_url", "expires_at", "request_ip"),
    EmailType.WELCOME: ("user", "activation_url"),
}
# Fm<index>H<filter>-<filter>Qz: letters, digits, '-' and '_' (escaping leaves it alone;
# a case change, a cut or an added character does not)
_HOLE = re.compile(r"Fm(\d+)H([a-z_\-]*)Qz")
_TRACE = re.compile(r"fm\d+h", re.IGNORECASE)
SUBJECT = 0  # the hole the HTML gets for the subject (the templates' ``subject``)


class HoleMisuse(ValueError):
    """A template used a personal value in a way a fill cannot repeat."""


class Hole(str):
    """A personal value's stand-in; carries the formatting filters applied to it."""

    index: int
    filters: tuple[str, ...]

    def __new__(cls, index: int, filters: tuple[str, ...] = ()) -> Hole:
        made = super().__new__(cls, f"Fm{index}H{'-'.join(filters)}Qz")
        made.index, made.filters = index, filters
        return made

    def through(self, name: str) -> Hole:
        return Hole(self.index, (*self.filters, name))


def passing_holes(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A template filter that records itself on a hole, and formats anything else."""

    def apply(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Hole):
            if args or kwargs:
                raise HoleMisuse(f"filter {name} with arguments on a personal value")
            return value.through(name)
        return function(value, *args, **kwargs)

    return apply


@dataclass(frozen=True)
class Shape:
    key: tuple[Any, ...]
    values: list[Any]  # the personal values, by hole index (0: the subject)
    source: Mapping[str, Any]
    personal: tuple[str, ...]

    def holed(self) -> dict[str, Any]:
        """The template data with holes: needed once per shape, not per email. Holes are
        numbered in the order ``shape_of`` found the values."""
        numbers = itertools.count(1)

        def holed(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: holed(v) for k, v in value.items()}
            if _kept(value):
                return value
            return Hole(next(numbers))

        data = dict(self.source)
        for field in self.personal:
            if field in data:
                data[field] = holed(data[field])
        return data


def _kept(value: Any) -> bool:
    """Values left in place (and made part of the shape): templates test them."""
    return not value or isinstance(value, bool | list | tuple)


def shape_of(email_type: EmailType, locale: str, shop_id: str,
             data: Mapping[str, Any]) -> Shape | None:
    """None for types rendered directly."""
    personal = PERSONAL.get(email_type)
    if personal is None:
        return None
    values: list[Any] = [None]  # hole 0: the subject, as the HTML repeats it (fill)
    layout: list[tuple[str, str]] = []  # each personal leaf's path, and how it was kept

    def visit(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                visit(f"{path}.{k}", v)
        elif _kept(value):
            layout.append((path, repr(value)))
        else:
            layout.append((path, "hole"))
            values.append(value)

    for field in personal:
        if field in data:
            visit(field, data[field])
    rest = {k: v for k, v in data.items() if k not in personal}
    key = (email_type, locale, shop_id, tuple(layout),
           json_text.dumps(rest, sort_keys=True))
    return Shape(key, values, data, personal)


@dataclass(frozen=True)
class Parts:
    """What an email's templates give: subject, HTML, text. ``inlined``: the HTML went
    through the CSS inliner, which parses and writes it again (its own escaping)."""

    subject: str
    html: str
    text: str
    inlined: bool = False


@dataclass(frozen=True)
class _Slot:
    index: int
    filters: tuple[str, ...]
    in_attribute: bool


Segments = tuple[tuple[str, _Slot | None], ...]


def _segments(text: str, html: bool) -> Segments:
    """The text cut at its holes; raises HoleMisuse when a hole was changed (a filter, a
    string method, a cut) and can no longer be found whole."""
    found: list[tuple[str, _Slot | None]] = []
    at = 0
    for match in _HOLE.finditer(text):
        start = match.start()
        in_attribute = html and text.rfind("<", 0, start) > text.rfind(">", 0, start)
        found.append((text[at:start], _Slot(int(match.group(1)),
                                             tuple(filter(None, match.group(2).split("-"))),
                                             in_attribute)))
        at = match.end()
    found.append((text[at:], None))
    if any(_TRACE.search(static) for static, _ in found):
        raise HoleMisuse("a personal value was changed by the template")
    return tuple(found)


def _jinja_html(value: str) -> str:
    """As Jinja2's autoescape writes a value, in text and in attributes alike."""
    return str(escape(value))


def _html_text(value: str) -> str:
    """As html5ever (the CSS inliner's parser) writes text that Jinja2 escaped: the parser
    reads the entities back and turns CR LF into LF, the serializer escapes only these."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return (value.replace("&", "&amp;").replace("\u00a0", "&nbsp;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _html_attribute(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")


class Skeleton:
    """One shape's output, cut at its holes once; ``fill`` puts an email's values in."""

    def __init__(self, parts: Parts) -> None:
        self._inlined = parts.inlined
        self._subject = _segments(parts.subject, html=False)
        self._html = _segments(parts.html, html=True)
        self._text = _segments(parts.text, html=False)

    def fill(self, values: list[Any], filters: Mapping[str, Callable[..., Any]]
             ) -> Parts | None:
        """None when a value cannot be put in as the template would have (the email is then
        rendered directly): formatted into markup, or holding a NUL the HTML parser drops."""
        formatted: dict[tuple[int, tuple[str, ...]], str] = {}
        for segments in (self._subject, self._html, self._text):
            for _, slot in segments:
                if slot is None or slot.index == SUBJECT or (slot.index,
                                                             slot.filters) in formatted:
                    continue
                value = values[slot.index]
                for name in slot.filters:
                    value = filters[name](value)
                if isinstance(value, Markup):
                    return None
                text = str(value)
                if "\0" in text:
                    return None
                formatted[slot.index, slot.filters] = text

        def joined(segments: Segments, html: bool) -> str:
            out = []
            for static, slot in segments:
                out.append(static)
                if slot is not None:
                    text = formatted[slot.index, slot.filters]
                    if html and not self._inlined:
                        text = _jinja_html(text)
                    elif html:
                        text = (_html_attribute(text) if slot.in_attribute
                                else _html_text(text))
                    out.append(text)
            return "".join(out)

        subject = joined(self._subject, False).strip()
        formatted[SUBJECT, ()] = subject  # the HTML's title: the stripped subject
        return Parts(subject, joined(self._html, True), joined(self._text, False),
                     self._inlined)
