"""Translations folded in at compile time render exactly what the runtime gettext rendered."""

from __future__ import annotations

import dataclasses

import pytest
from jinja2 import DictLoader, Environment, StrictUndefined, UndefinedError, select_autoescape

from processors.jinja_fold import FoldingEnvironment, render
from processors.locales import SUPPORTED
from processors.rendering import Renderer, _newstyle_gettext
from tests.unit.test_render_every_type import ALL

CATALOG = {"Hello %(name)s,": "Hallo %(name)s,", "Fish & chips": "Fisch & Pommes <frisch>",
           "100%% sure": "100%% sicher", "Half %": "Halb %", "l'adresse": "l'adresse"}


def _environment(templates: dict[str, str], fold: bool) -> Environment:
    env = FoldingEnvironment(loader=DictLoader(templates), undefined=StrictUndefined,
                             autoescape=select_autoescape(["html"], default_for_string=False))
    translate = lambda text: CATALOG.get(text, text)  # noqa: E731
    fast = _newstyle_gettext(translate)
    env.globals.update(_=fast, gettext=fast)
    env.translate = translate if fold else None
    return env


TEMPLATES = {
    "plain.html": '{{ _("Fish & chips") }}|{{ _("l\'adresse") }}|{{ _("100%% sure") }}',
    "values.html": '{{ _("Hello %(name)s,", name=who) }}',
    "values.txt": '{{ _("Hello %(name)s,", name=who) }}',
    "plain.txt": '{{ _("Fish & chips") }}',
    "nested.html": '{{ _("Hello %(name)s,", name=_("Fish & chips")) }}',
    "dynamic.html": "{{ _(text) }}",
    "stray.html": '{{ _("Half %") }}',
    "shadowed.html": '{% set _ = "mine" %}{{ _ }}',
    "gettext.html": '{{ gettext("Fish & chips") }}',
}


@pytest.mark.parametrize("name", sorted(set(TEMPLATES) - {"stray.html"}))
@pytest.mark.parametrize("who", ["Ann", "<b>Zoë</b> & \"co\"", "%(name)s"])
def test_a_folded_template_renders_as_the_runtime_call(name, who):
    data = {"who": who, "text": "Fish & chips"}
    folded = _environment(TEMPLATES, fold=True).get_template(name).render(data)
    runtime = _environment(TEMPLATES, fold=False).get_template(name).render(data)
    assert folded == runtime


def test_literal_calls_leave_no_call_in_the_compiled_code():
    env = _environment(TEMPLATES, fold=True)
    code = env.compile(TEMPLATES["plain.html"], raw=True)
    assert "Fisch & Pommes <frisch>" in code and "100% sicher" in code
    assert "'_'" not in code and "gettext" not in code
    assert "'_'" in _environment(TEMPLATES, fold=False).compile(TEMPLATES["plain.html"],
                                                                raw=True)
    values = env.compile(TEMPLATES["values.html"], raw=True)
    assert "Hallo %(name)s," in values and "'_'" not in values


def test_what_cannot_be_folded_is_left_to_the_runtime_call():
    env = _environment(TEMPLATES, fold=True)
    assert "'_'" in env.compile(TEMPLATES["dynamic.html"], raw=True)
    assert env.get_template("shadowed.html").render() == "mine"
    with pytest.raises(ValueError, match="incomplete format"):  # as the runtime call fails
        env.get_template("stray.html").render()
    with pytest.raises(ValueError, match="incomplete format"):
        _environment(TEMPLATES, fold=False).get_template("stray.html").render()


def test_render_without_the_globals_copy_is_render():
    env = _environment({"t.html": '{{ _("Hello %(name)s,", name=who) }} {{ range(2)|list }}'},
                       fold=True)
    template = env.get_template("t.html")
    assert render(template, {"who": "<i>"}, dict(env.globals)) == template.render(who="<i>")
    with pytest.raises(UndefinedError):
        render(template, {}, dict(env.globals))


def _runtime_renderer() -> Renderer:
    """The shipped templates with every ``_()`` called at render time, as before folding."""
    renderer = Renderer(pdf_types=frozenset())
    for locale in SUPPORTED:
        renderer.kit(locale).env.translate = None  # before any template compiles
    return renderer


FOLDED, RUNTIME = Renderer(pdf_types=frozenset()), _runtime_renderer()


@pytest.mark.parametrize("key", sorted(ALL, key=lambda k: (k[0].value, k[1])),
                         ids=lambda k: f"{k[0].value}-{k[1]}")
def test_every_shipped_template_renders_the_same_folded(key):
    command = ALL[key]
    for locale in sorted(SUPPORTED):  # each type's data in every locale
        localized = dataclasses.replace(command, locale=locale)
        assert FOLDED.render(localized) == RUNTIME.render(localized)


@pytest.mark.parametrize(("source", "data"), [
    ("{{ d.name }}|{{ d.items is defined }}|{{ d['items'] }}", {"name": "Zelt", "items": [1]}),
    ("{{ d.keys()|list }}|{{ d.nested.deep }}", {"a": 1, "nested": {"deep": "x"}}),
    ("{{ o.real }}|{{ s.upper() }}", {}),
])
def test_attribute_lookup_on_dicts_gives_what_jinja_gives(source, data):
    context = {"d": data, "o": 3, "s": "abc"}
    plain = Environment(undefined=StrictUndefined).from_string(source).render(context)
    assert FoldingEnvironment(undefined=StrictUndefined).from_string(source).render(
        context) == plain


def test_a_missing_key_is_strictly_undefined_as_in_jinja():
    template = FoldingEnvironment(undefined=StrictUndefined).from_string("{{ d.missing }}")
    with pytest.raises(UndefinedError, match="missing"):
        template.render(d={"there": 1})
