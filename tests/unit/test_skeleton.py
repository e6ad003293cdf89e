"""Security mail filled into its shape equals the direct render, byte for byte."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalogue import EmailType
from flowmail.samples import password_reset_requested, user_created
from processors.errors import RejectedInput
from processors.locales import SUPPORTED
from processors.rendering import Renderer
from processors.routing import route
from processors.skeleton import Hole, HoleMisuse, Parts, Skeleton, shape_of

# what makes escaping and parsing differ: markup, quotes, entities, spaces at the ends,
# non-breaking spaces, CR, non-ASCII, template-looking text, a hole-looking token
PIECES = st.sampled_from(["Ann", "<b>", "&", "&amp;", "\"", "'", " ", "\u00a0", "\r", "Zoë",
                          "山田", "{{ x }}", "%(name)s", "fm1h", "Fm0HQz", "a\tb", "é", ""])
TEXT = st.lists(PIECES, max_size=6).map("".join)
URL_TAIL = st.lists(st.sampled_from(["a", "&b=1", "\"", "'", "<", "%20", "#f", "?q"]),
                    max_size=5).map("".join)


def _direct_renderer() -> Renderer:
    renderer = Renderer()
    renderer._from_shape = lambda kit, command: None  # type: ignore[method-assign]
    return renderer


SHAPED, DIRECT = Renderer(), _direct_renderer()


def _commands(kind: str, first: str, last: str, tail: str, ip: str | None, locale: str,
              shop_name: str) -> list:
    now = dt.datetime.now(dt.UTC)
    event = (password_reset_requested(3, now) if kind == "reset" else user_created(3, now))
    event["user"].update(first_name=first, last_name=last, locale=locale)
    event["shop"]["name"] = shop_name or "Nordlicht"
    if kind == "reset":
        event["reset_url"] = f"https://shop.example/reset?t={tail}"
        event["request_ip"] = ip
    else:
        event["activation_url"] = f"https://shop.example/activate?t={tail}"
    ms = int(time.time() * 1000)
    topic = "user.password_reset_requested" if kind == "reset" else "user.created"
    try:
        return route(topic, event, ms, ms)
    except RejectedInput:
        return []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["reset", "welcome"]), first=TEXT, last=TEXT, tail=URL_TAIL,
       ip=st.one_of(st.none(), st.just(""), TEXT), locale=st.sampled_from(sorted(SUPPORTED)),
       shop_name=st.sampled_from(["Nordlicht", "A & B <Shop>", "Café \"Zoë\""]))
def test_a_filled_shape_is_the_direct_render(kind, first, last, tail, ip, locale, shop_name):
    for command in _commands(kind, first, last, tail, ip, locale, shop_name):
        try:
            expected = DIRECT.render(command)
        except RejectedInput:
            with pytest.raises(RejectedInput):
                SHAPED.render(command)
            continue
        assert SHAPED.render(command) == expected  # the first of a shape, or a fill


@pytest.mark.parametrize("first", ["Ann", "<b>&amp;", "\"'", " \u00a0Zoë\r", "Fm0HQz"])
def test_a_template_set_with_a_style_sheet_fills_as_the_inliner_writes(tmp_path, first,
                                                                       caplog):
    """Templates with a <style> block go through the CSS inliner, which writes the HTML
    again with its own escaping: their fills follow it, byte for byte."""
    import shutil

    from core.settings import TEMPLATE_DIR

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    layout = templates / "_layout.html"
    layout.write_text(layout.read_text().replace(
        "</head>", "<style>p { line-height: 1.5 }</style>\n</head>"))
    shaped, direct = Renderer(template_dir=templates), Renderer(template_dir=templates)
    direct._from_shape = lambda kit, command: None  # type: ignore[method-assign]
    for index in range(3):  # the first of the shape, then fills
        for kind in ("reset", "welcome"):
            for command in _commands(kind, f"{first}{index}", "Q", f"a{index}\"", None,
                                     "de", "Nordlicht"):
                expected = direct.render(command)
                assert "line-height: 1.5" in expected.html
                assert shaped.render(command) == expected
    assert "rendered directly" not in caplog.text  # the fills were used, and exact


def test_shapes_are_shared_by_resets_of_one_shop_and_locale():
    renderer = Renderer()
    commands = [c for i in range(40) for c in route(
        "user.password_reset_requested", password_reset_requested(i), 1, 1)]
    direct = _direct_renderer()
    assert [renderer.render(c) for c in commands] == [direct.render(c) for c in commands]
    locales = {c.locale for c in commands}
    assert len(renderer._shapes) == len(locales)  # one each, all usable
    assert all(shape is not False for shape in renderer._shapes.values())


def test_everything_but_the_personal_values_is_part_of_the_shape():
    event = password_reset_requested(1)
    [one] = route("user.password_reset_requested", event, 1, 1)
    data = one.template_data
    other_shop = {**data, "shop": {**data["shop"], "name": "Other"}}
    no_ip = {**data, "request_ip": None}
    key = shape_of(EmailType.PASSWORD_RESET, "de_DE", "s1", data).key
    assert shape_of(EmailType.PASSWORD_RESET, "de_DE", "s1", other_shop).key != key
    assert shape_of(EmailType.PASSWORD_RESET, "de_DE", "s1", no_ip).key != key
    assert shape_of(EmailType.PASSWORD_RESET, "fr_FR", "s1", data).key != key
    renamed = {**data, "user": {**data["user"], "first_name": "Somebody else"}}
    assert shape_of(EmailType.PASSWORD_RESET, "de_DE", "s1", renamed).key == key
    assert shape_of(EmailType.ORDER_CONFIRMATION, "de_DE", "s1", data) is None


def test_a_hole_changed_by_a_template_is_refused():
    changed = Parts(subject=str(Hole(1)).upper(), html="<p></p>", text="")
    with pytest.raises(HoleMisuse):
        Skeleton(changed)
    cut = Parts(subject=str(Hole(1))[:5], html="", text="")
    with pytest.raises(HoleMisuse):
        Skeleton(cut)


def test_a_template_that_changes_a_personal_value_is_rendered_directly(tmp_path):
    """A template edited to upper-case the name: the first email's comparison fails, and
    every later one of that shape is rendered directly, correctly."""
    import shutil

    from core.settings import TEMPLATE_DIR
    shutil.copytree(TEMPLATE_DIR, tmp_path / "t")
    body = tmp_path / "t" / "password_reset" / "body.txt"
    body.write_text(body.read_text().replace("name=user.first_name", "name=user.first_name|upper"))
    renderer = Renderer(template_dir=tmp_path / "t")
    commands = [c for i in range(3) for c in route(
        "user.password_reset_requested", password_reset_requested(i), 1, 1)]
    for command in commands:
        rendered = renderer.render(command)
        assert command.template_data["user"]["first_name"].upper() in rendered.text
    assert set(renderer._shapes.values()) == {False}


def test_a_value_with_a_nul_is_rendered_directly():
    parts = Parts(subject="Hi", html=f"<p>{Hole(1)}</p>", text=str(Hole(1)))
    assert Skeleton(parts).fill([None, "a\0b"], {}) is None
    assert Skeleton(parts).fill([None, "a<b"], {}) == Parts("Hi", "<p>a&lt;b</p>", "a<b")
