"""Translations folded into a locale's compiled templates, and a render without the globals'
copy.

Each locale has its own Jinja2 environment (processors/rendering.py), so a ``_("...")`` with
a literal text has one answer per environment: it is looked up when the template compiles,
not at every render. A transactional email called ``_()`` 8-23 times a render, each through
Jinja2's ``Context.call``, the catalog and ``Markup``: a fifth of an order confirmation's
templates. What a folded call gives is what the newstyle gettext gives (rendering.py): the
catalog's text as markup where the template autoescapes, always formatted with ``%``, so
``%%`` is ``%`` and the values are escaped as they are put in.

Not folded, left to the runtime call: a text that is not a literal, ``*args``/``**kwargs``,
a template that assigns ``_`` or ``gettext`` itself, and a text whose translation does not
format (a stray ``%``): the call then fails or not exactly as it did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import Environment, Template, nodes
from jinja2.runtime import new_context

GETTEXT_NAMES = frozenset({"_", "gettext"})
_DICT_ATTRIBUTES = frozenset(dir(dict))


def fold_gettext(tree: nodes.Template, translate: Callable[[str], str]) -> nodes.Template:
    """``tree`` with every foldable ``_("literal", name=value)`` replaced by its
    translation (a constant, or the constant ``%`` the values)."""
    if any(node.name in GETTEXT_NAMES for node in tree.find_all(nodes.Name)
           if node.ctx != "load"):
        return tree  # the template binds the name itself: its calls are not ours

    def folded(call: nodes.Call) -> nodes.Expr | None:
        if (not isinstance(call.node, nodes.Name) or call.node.name not in GETTEXT_NAMES
                or len(call.args) != 1 or not isinstance(call.args[0], nodes.Const)
                or not isinstance(call.args[0].value, str) or call.dyn_args is not None
                or call.dyn_kwargs is not None):
            return None
        translated = translate(call.args[0].value)
        if not call.kwargs:
            try:
                constant = translated % {}
            except (TypeError, ValueError, KeyError):
                return None
            return nodes.MarkSafeIfAutoescape(nodes.Const(constant), lineno=call.lineno)
        values = nodes.Dict([nodes.Pair(nodes.Const(keyword.key), keyword.value,
                                        lineno=call.lineno) for keyword in call.kwargs],
                            lineno=call.lineno)
        text = nodes.MarkSafeIfAutoescape(nodes.Const(translated), lineno=call.lineno)
        return nodes.Mod(text, values, lineno=call.lineno)

    _replace_calls(tree, folded)
    return tree


def _replace_calls(node: nodes.Node, folded: Callable[[nodes.Call], nodes.Expr | None]
                   ) -> None:
    """Depth first: a call's own arguments are folded before the call is looked at."""
    for name in node.fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, nodes.Node):
                    _replace_calls(item, folded)
                    if isinstance(item, nodes.Call):
                        value[index] = folded(item) or item
        elif isinstance(value, nodes.Node):
            _replace_calls(value, folded)
            if isinstance(value, nodes.Call):
                setattr(node, name, folded(value) or value)


class FoldingEnvironment(Environment):
    """An environment whose templates have ``translate``'s answers compiled in."""

    translate: Callable[[str], str] | None = None

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``order.total`` on a dict without raising and catching an AttributeError first
        (Jinja2 tries the attribute, then the item): a template's data is dicts, and the
        exception was a fiftieth of a worker's CPU in the mix. A name dicts have as an
        attribute (``items``, ``keys``...) still gives the attribute, as Jinja2's does."""
        if obj.__class__ is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        return tree if self.translate is None else fold_gettext(tree, self.translate)


def render(template: Template, context: dict[str, Any], env_globals: dict[str, Any]) -> str:
    """``template.render(context)`` without making a dict of the environment's globals (a
    ChainMap, iterated twice) for every render: ``env_globals`` is that dict, made once, and
    the context is a plain merge. For templates loaded without globals of their own (as
    ``get_template`` loads them), and without ``{% import %}`` (whose exports would read
    the globals' names). Errors go through Jinja2's handler, as in ``render``."""
    environment = template.environment
    scope = new_context(environment, template.name, template.blocks,
                        {**env_globals, **context}, shared=True)
    try:
        return environment.concat(template.root_render_func(scope))  # type: ignore[attr-defined]
    except Exception:
        environment.handle_exception()
        raise  # handle_exception always raises; for type checkers
