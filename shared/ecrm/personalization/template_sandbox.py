"""The sandbox content templates run in, and the save-time check of what a template references.

Two layers, because templates are written by users:

1. At save time, `check_source` walks the parsed template (jinja2.nodes) and rejects, with the line
   and the reason, anything outside the catalogue (`ecrm.personalization.template_catalogue`):
   unknown variables and fields (`customer.shoe_size`), any name starting with an underscore,
   calls (methods, `cycler()`, `range()`), filters and tests not in the documented list, macros,
   includes, imports, `{% autoescape false %}`. Expressions are typed against the catalogue, so
   `item.name` inside `{% for item in recommendations %}` is checked against an item's fields.
2. At render time, `ContentSandbox` (jinja2's `ImmutableSandboxedEnvironment`) is the backstop
   for a template that was stored before a check existed or slipped through one: no globals
   (no `cycler`, `lipsum`, `range`, `namespace`), only the documented filters, underscore names
   raise `SecurityError` instead of rendering as empty, a dict's entries are its only fields
   (never `.items` or `.update`), and `*` and `**` cannot build huge strings or numbers.

Missing data is never an error: `MissingValue` renders as empty, iterates as an empty list,
compares as false and stays missing through arithmetic, so `{% if customer.loyalty_points > 100 %}`
for a customer without points takes the else branch instead of failing the send.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from jinja2 import ChainableUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.tests import TESTS as JINJA_TESTS

from ecrm.personalization.html_text import heading
from ecrm.personalization.template_catalogue import CATALOGUE, LOOP, Kind, ListOf, Record, Value
from ecrm.personalization.template_filters import FILTER_DOCS, JsonText, filters_for

EnvironmentKind = Literal["html", "text", "json"]
ALLOWED_TESTS = (
    *("defined", "undefined", "none", "number", "string", "integer", "float", "boolean", "true", "false"),
    *("even", "odd", "divisibleby", "lower", "upper", "in", "eq", "ne", "lt", "le", "gt", "ge", "equalto"),
    *("==", "!=", "<", "<=", ">", ">="),
)


class MissingValue(ChainableUndefined):
    """Missing data: empty when printed, false when compared, still missing after arithmetic."""

    __slots__ = ()

    def _false(self, other: Any) -> bool:
        return False

    def _missing(self, *args: Any) -> MissingValue:
        return self

    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _missing  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _missing  # type: ignore[assignment]
    __pos__ = __neg__ = _missing  # type: ignore[assignment]


class _RestrictedCodeGenerator(CodeGenerator):
    """Refuses to compile what the save-time check rejects, for a source that never went through it."""

    def _refuse(self, node: nodes.Node, *args: Any, **kwargs: Any) -> None:
        self.fail(_forbidden_reason(node), node.lineno)

    visit_Call = visit_Macro = visit_CallBlock = visit_Include = visit_Import = _refuse
    visit_FromImport = visit_Extends = visit_Block = visit_NSRef = _refuse
    visit_EvalContextModifier = visit_ScopedEvalContextModifier = _refuse


class ContentSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, narrowed to plain data (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _RestrictedCodeGenerator

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute[:1] == "_":
            raise SecurityError(f"{attribute!r} is not accessible: names starting with an underscore are private")
        if type(obj) is dict:  # context data: entries are the fields, methods are not
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument[:1] == "_":
            raise SecurityError(f"{argument!r} is not accessible: names starting with an underscore are private")
        if type(obj) is dict:
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} value is not allowed")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the power operator is not available")
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            raise SecurityError("repeating text or lists with * is not available")
        return super().call_binop(context, operator, left, right)


def _json_value(value: Any) -> Any:
    """Every `{{ }}` of a webhook body is a JSON value, so data can never break the document."""
    if isinstance(value, JsonText):
        return value
    if isinstance(value, Undefined):
        return "null"
    return json.dumps(value, ensure_ascii=False, default=str)


def _environment(kind: EnvironmentKind) -> ContentSandbox:
    environment = ContentSandbox(
        autoescape=kind == "html",
        undefined=MissingValue,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_json_value if kind == "json" else None,
        cache_size=0,
        auto_reload=False,
    )
    environment.globals.clear()
    environment.filters = filters_for(kind)
    if kind == "text":
        environment.filters["heading"] = heading  # only derived text parts pass the check with it
    environment.tests = {name: JINJA_TESTS[name] for name in ALLOWED_TESTS}
    return environment


ENVIRONMENTS: dict[EnvironmentKind, ContentSandbox] = {kind: _environment(kind) for kind in ("html", "text", "json")}
ROOTS: dict[str, Kind] = dict(CATALOGUE.fields)

_COMPUTED = Value("a value computed in the template")
_UNKNOWN = Value("unknown after an error")  # suppresses follow-on errors about the same expression
_FORBIDDEN: dict[type[nodes.Node], str] = {
    nodes.Call: "calling functions or methods is not available: use a filter, e.g. {{ name|upper }}",
    nodes.Macro: "macros are not available",
    nodes.CallBlock: "call blocks are not available",
    nodes.Include: "templates cannot include other templates",
    nodes.Import: "templates cannot import other templates",
    nodes.FromImport: "templates cannot import other templates",
    nodes.Extends: "templates cannot extend other templates",
    nodes.Block: "blocks (template inheritance) are not available",
    nodes.EvalContextModifier: "autoescaping cannot be changed",
    nodes.NSRef: "namespace assignments are not available",
    nodes.Pow: "the power operator is not available",
}


def _forbidden_reason(node: nodes.Node) -> str:
    for node_type, reason in _FORBIDDEN.items():
        if isinstance(node, node_type):
            return reason
    return f"{type(node).__name__} is not available in templates"


def check_source(
    environment: ContentSandbox,
    source: str,
    *,
    structured_output: bool = False,
    extra_filters: frozenset[str] = frozenset(),
) -> list[tuple[int | None, str]]:
    """(line, reason) for everything wrong with a template source; empty when it may be saved.

    `structured_output` allows `{{ customer }}` (a webhook body prints whole records as JSON).
    """
    try:
        tree = environment.parse(source)
    except Exception as error:  # TemplateSyntaxError, and anything a malformed source provokes
        return [(getattr(error, "lineno", None), f"syntax error: {getattr(error, 'message', None) or error}")]
    checker = _Checker(structured_output, frozenset(FILTER_DOCS) | extra_filters)
    checker.statements(tree.body, dict(ROOTS))
    return checker.problems


class _Checker:
    def __init__(self, structured_output: bool, filters: frozenset[str]) -> None:
        self.structured_output = structured_output
        self.filters = filters
        self.problems: list[tuple[int | None, str]] = []

    def fail(self, node: nodes.Node, reason: str) -> Kind:
        self.problems.append((node.lineno, reason))
        return _UNKNOWN

    # -- statements -----------------------------------------------------------------------------
    def statements(self, body: Sequence[nodes.Node], scope: dict[str, Kind]) -> None:
        for node in body:
            self.statement(node, scope)

    def statement(self, node: nodes.Node, scope: dict[str, Kind]) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    continue
                kind = self.expr(child, scope)
                if not self.structured_output and isinstance(kind, Record | ListOf):
                    self.fail(child, f"{_path(child)} is a group of fields, not a value: print one of its fields")
        elif isinstance(node, nodes.If):
            self.expr(node.test, scope)
            self.statements(node.body, scope)
            self.statements(node.elif_, scope)
            self.statements(node.else_, scope)
        elif isinstance(node, nodes.For):
            self.loop(node, scope)
        elif isinstance(node, nodes.Assign):
            self.bind(node.target, self.expr(node.node, scope), scope)
        elif isinstance(node, nodes.AssignBlock):
            self.statements(node.body, scope)
            if node.filter is not None:
                self.filter(node.filter, _COMPUTED, scope)
            self.bind(node.target, _COMPUTED, scope)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=False):
                self.bind(target, self.expr(value, scope), inner)
            self.statements(node.body, inner)
        elif isinstance(node, nodes.FilterBlock):
            self.filter(node.filter, _COMPUTED, scope)
            self.statements(node.body, scope)
        elif isinstance(node, nodes.Scope):
            self.statements(node.body, dict(scope))
        else:
            self.forbidden(node)

    def loop(self, node: nodes.For, scope: dict[str, Kind]) -> None:
        iterable = self.expr(node.iter, scope)
        if isinstance(iterable, ListOf):
            item: Kind = iterable.item
        elif isinstance(iterable, Record):
            item = self.fail(node.iter, f"{_path(node.iter)} is not a list")
        else:
            item = _UNKNOWN if iterable is _UNKNOWN else _COMPUTED
        if node.recursive:
            self.fail(node, "recursive loops are not available")
        inner = dict(scope)
        self.bind(node.target, item, inner)
        inner["loop"] = LOOP
        if node.test is not None:
            self.expr(node.test, inner)
        self.statements(node.body, inner)
        self.statements(node.else_, scope)

    def bind(self, target: nodes.Node, kind: Kind, scope: dict[str, Kind]) -> None:
        if isinstance(target, nodes.Name):
            scope[target.name] = kind
        elif isinstance(target, nodes.Tuple):
            for element in target.items:
                self.bind(element, _COMPUTED, scope)
        else:
            self.forbidden(target)

    def forbidden(self, node: nodes.Node) -> Kind:
        return self.fail(node, _forbidden_reason(node))

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, node: nodes.Node, scope: dict[str, Kind]) -> Kind:
        if isinstance(node, nodes.Name):
            if node.name in scope:
                return scope[node.name]
            return self.fail(node, f"unknown variable '{node.name}' (available: {', '.join(sorted(scope))})")
        if isinstance(node, nodes.Const | nodes.TemplateData):
            return _COMPUTED
        if isinstance(node, nodes.Getattr):
            return self.member(node, self.expr(node.node, scope), node.attr)
        if isinstance(node, nodes.Getitem):
            return self.subscript(node, scope)
        if isinstance(node, nodes.Filter):
            if node.node is None:
                return self.fail(node, "a filter needs a value")
            return self.filter(node, self.expr(node.node, scope), scope)
        if isinstance(node, nodes.Test):
            self.test(node, scope)
            return _COMPUTED
        if isinstance(node, nodes.CondExpr):
            self.expr(node.test, scope)
            kind = self.expr(node.expr1, scope)
            if node.expr2 is not None:
                self.expr(node.expr2, scope)
            return kind
        if isinstance(node, nodes.Pow):
            return self.forbidden(node)
        if isinstance(node, nodes.Mul) and any(
            isinstance(side, nodes.List | nodes.Tuple)
            or (isinstance(side, nodes.Const) and isinstance(side.value, str))
            for side in (node.left, node.right)
        ):
            return self.fail(node, "repeating text or lists with * is not available")
        if isinstance(node, nodes.BinExpr):
            left = self.expr(node.left, scope)
            self.expr(node.right, scope)
            return left if isinstance(node, nodes.Or) else _COMPUTED  # `recommendations or []`
        if isinstance(node, nodes.UnaryExpr):
            self.expr(node.node, scope)
            return _COMPUTED
        if isinstance(node, nodes.Concat):
            for child in node.nodes:
                self.expr(child, scope)
            return _COMPUTED
        if isinstance(node, nodes.Compare):
            self.expr(node.expr, scope)
            for operand in node.ops:
                self.expr(operand.expr, scope)
            return _COMPUTED
        if isinstance(node, nodes.List | nodes.Tuple):
            kinds = [self.expr(item, scope) for item in node.items]
            return ListOf("a list written in the template", kinds[0] if kinds else _COMPUTED)
        if isinstance(node, nodes.Dict):
            for pair in node.items:
                self.expr(pair.key, scope)
                self.expr(pair.value, scope)
            return _COMPUTED
        if isinstance(node, nodes.Slice):
            for bound in (node.start, node.stop, node.step):
                if bound is not None:
                    self.expr(bound, scope)
            return _COMPUTED
        return self.forbidden(node)

    def member(self, node: nodes.Node, owner: Kind, name: str) -> Kind:
        if name.startswith("_"):
            return self.fail(node, f"'{name}' is not accessible: names starting with an underscore are private")
        if owner is _UNKNOWN:
            return _UNKNOWN
        owner_path = _path(node.node) if isinstance(node, nodes.Getattr | nodes.Getitem) else "value"
        if isinstance(owner, Record):
            if name in owner.fields:
                return owner.fields[name]
            return self.fail(node, f"{owner_path} has no field '{name}' (fields: {', '.join(owner.fields)})")
        if isinstance(owner, ListOf):
            return self.fail(node, f"{owner_path} is a list: loop over it or take one item, e.g. {owner_path}[0]")
        return self.fail(node, f"{owner_path} is a value without fields ('{name}' is not available)")

    def subscript(self, node: nodes.Getitem, scope: dict[str, Kind]) -> Kind:
        owner = self.expr(node.node, scope)
        argument = node.arg
        if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
            return self.member(node, owner, argument.value)
        if isinstance(argument, nodes.Slice):
            self.expr(argument, scope)
            return owner if isinstance(owner, ListOf) else _COMPUTED
        if isinstance(argument, nodes.Const) and isinstance(argument.value, int):
            if isinstance(owner, ListOf):
                return owner.item
            if isinstance(owner, Record):
                return self.fail(node, f"{_path(node.node)} is not a list")
            return _UNKNOWN if owner is _UNKNOWN else _COMPUTED
        self.expr(argument, scope)
        return self.fail(node, "only fixed subscripts are available, e.g. recommendations[0] or customer['city']")

    def filter(self, node: nodes.Filter, value: Kind, scope: dict[str, Kind]) -> Kind:
        if node.name not in self.filters:
            return self.fail(node, f"unknown filter '{node.name}' (available: {', '.join(sorted(FILTER_DOCS))})")
        self.arguments(node, scope)
        for keyword in node.kwargs:
            if keyword.key == "attribute":
                item = value.item if isinstance(value, ListOf) else _UNKNOWN
                if not isinstance(keyword.value, nodes.Const) or not isinstance(keyword.value.value, str):
                    self.fail(node, "attribute= must be a field name in quotes")
                else:
                    self.member(keyword, item if isinstance(item, Record) else _UNKNOWN, keyword.value.value)
        returns = FILTER_DOCS[node.name].returns if node.name in FILTER_DOCS else "value"
        if returns == "same":
            return value
        if returns == "item":
            return value.item if isinstance(value, ListOf) else value
        if returns == "batches":
            return ListOf("rows of items", value) if isinstance(value, ListOf) else _COMPUTED
        return _COMPUTED

    def test(self, node: nodes.Test, scope: dict[str, Kind]) -> None:
        self.expr(node.node, scope)
        if node.name not in ALLOWED_TESTS:
            self.fail(node, f"unknown test '{node.name}' (available: {', '.join(ALLOWED_TESTS)})")
        self.arguments(node, scope)

    def arguments(self, node: nodes.Filter | nodes.Test, scope: dict[str, Kind]) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.fail(node, "*args and **kwargs are not available")
        for argument in node.args:
            self.expr(argument, scope)
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str) and argument.value[:1] == "_":
                self.fail(argument, "arguments starting with an underscore are not available")
        for keyword in node.kwargs:
            if keyword.key != "attribute":
                self.expr(keyword.value, scope)


def _path(node: nodes.Node) -> str:
    """`customer.address` as the user wrote it, for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_path(node.node)}[{node.arg.value!r}]"
    if isinstance(node, nodes.Filter):
        return f"{_path(node.node) if node.node is not None else ''}|{node.name}"
    return "this value"


def describe_language() -> dict[str, Any]:
    """The filters and tests a template may use, for the editor (the fields are in the catalogue)."""
    return {"filters": {name: spec.doc for name, spec in FILTER_DOCS.items()}, "tests": list(ALLOWED_TESTS)}
