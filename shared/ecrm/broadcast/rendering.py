"""Rendering a message's content for one customer: jinja2 in a sandbox, with the customer's profile and `data`.

Templates are compiled once per process (a campaign renders the same text for every customer), and an
unknown name renders empty rather than failing a send. A template that does not compile is refused when
the message is requested, so a send never fails on syntax.

Content is written by staff and filled with data from API callers, so the sandbox assumes both may be
hostile: jinja2's immutable sandbox (no attribute starting with `_`, no mutation of `data`), no globals
(`range`, `cycler`, `lipsum`, `namespace`...), no calls (a string's `ljust(10**9)` is a call), no macros,
includes or imports, only the filters listed in `ALLOWED_FILTERS` (no `center`, `format`, `wordwrap`,
`batch`, `random`...), `*`, `**`, `%`, `+` and `~` that cannot build huge values, a budget of loop
iterations per render, and a cap on what one render may produce. Header parts (an email's subject, a title) render on
one line: a CR or LF from the data cannot start a header of its own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from ecrm.core.errors import InvalidInput

MAX_OUTPUT_CHARS = 200_000
MAX_LOOP_ITERATIONS = 100_000  # per render, every loop counted
MAX_EXPONENT = 100
MAX_POWER_BASE_BITS = 64
HEADER_PARTS = frozenset({"subject", "title", "cta_label", "template_name", "language"})
ALLOWED_FILTERS = frozenset(
    {
        *("abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "groupby"),
        *("int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr"),
        *("replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "striptags", "sum"),
        *("title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "wordcount"),
    }
)
FORBIDDEN_NODES = ("Call", "Macro", "CallBlock", "Include", "Import", "FromImport", "Extends", "Block")
_LOOP_BUDGET_FILTER = "ecrm_loop_budget"
_CONCAT_FILTER = "ecrm_concat"
_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("ecrm_render_budget")


class RenderFailed(Exception):
    """The content could not be rendered for this customer (a runtime error in a template)."""


@lru_cache(maxsize=1)
def _environment() -> Any:
    """Imported on the first render: the API's cold start does not load jinja2 for the routes that never render."""
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class ContentSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "%" and isinstance(left, str):
                raise SecurityError("string formatting with % is not allowed in content")
            if operator == "+" and _too_long_sum(left, right):
                raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} is not allowed")
            if operator == "*" and _too_long_repetition(left, right):
                raise SecurityError(f"a repetition longer than {MAX_OUTPUT_CHARS} is not allowed")
            if operator == "**" and _too_large_power(left, right):
                raise SecurityError("a power this large is not allowed in content")
            return super().call_binop(context, operator, left, right)

    env = ContentSandbox(undefined=ChainableUndefined, autoescape=False)
    env.globals.clear()
    kept = {name: f for name, f in env.filters.items() if name in ALLOWED_FILTERS}
    env.filters.clear()
    env.filters.update(kept, join=_bounded_join(kept["join"]), replace=_bounded_replace(kept["replace"]))
    env.filters[_LOOP_BUDGET_FILTER] = _loop_budget
    env.filters[_CONCAT_FILTER] = _bounded_concat()
    return env


def _too_long_sum(left: Any, right: Any) -> bool:
    sized = (str, list, tuple)
    return isinstance(left, sized) and isinstance(right, sized) and len(left) + len(right) > MAX_OUTPUT_CHARS


def _bounded_concat() -> Any:
    """What `~` compiles to here: jinja2's own join (escaping under autoescape), refused past the output cap."""
    from jinja2.runtime import markup_join, str_join
    from jinja2.sandbox import SecurityError
    from jinja2.utils import pass_eval_context

    @pass_eval_context
    def concat(eval_ctx: Any, values: list[Any]) -> Any:
        if sum(len(v) if isinstance(v, str) else len(str(v)) for v in values) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} is not allowed")
        return markup_join(values) if eval_ctx.volatile or eval_ctx.autoescape else str_join(values)

    return concat


def _too_long_repetition(left: Any, right: Any) -> bool:
    return any(
        isinstance(sequence, str | list | tuple) and isinstance(times, int) and len(sequence) * times > MAX_OUTPUT_CHARS
        for sequence, times in ((left, right), (right, left))
    )


def _too_large_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int | float) and isinstance(exponent, int | float)):
        return False
    return abs(exponent) > MAX_EXPONENT or (isinstance(base, int) and base.bit_length() > MAX_POWER_BASE_BITS)


def _loop_budget(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every `{% for %}` iterates through: a render stops after `MAX_LOOP_ITERATIONS` in all."""
    from jinja2.sandbox import SecurityError

    budget = _budget.get(None)
    for item in iterable:
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise SecurityError(f"the content loops more than {MAX_LOOP_ITERATIONS} times")
        yield item


def _bounded_join(join: Any) -> Any:
    from jinja2.sandbox import SecurityError
    from jinja2.utils import pass_eval_context

    @pass_eval_context
    def bounded(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        if len(str(d)) * max(0, len(items) - 1) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"a join longer than {MAX_OUTPUT_CHARS} is not allowed")
        return join(eval_ctx, items, d, attribute)

    return bounded


def _bounded_replace(replace: Any) -> Any:
    from jinja2.sandbox import SecurityError
    from jinja2.utils import pass_eval_context

    @pass_eval_context
    def bounded(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
        text, old_text, new_text = str(s), str(old), str(new)
        times = text.count(old_text) if old_text else len(text) + 1
        if count is not None:
            times = min(times, max(0, count))
        if len(text) + times * (len(new_text) - len(old_text)) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"a replacement longer than {MAX_OUTPUT_CHARS} is not allowed")
        return replace(eval_ctx, s, old, new, count)

    return bounded


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    """Parsed, checked for what content may not hold, every loop put on the render's budget, compiled."""
    from jinja2 import TemplateSyntaxError, nodes

    env = _environment()
    tree = env.parse(source)
    for name in FORBIDDEN_NODES:
        found = next(iter(tree.find_all(getattr(nodes, name))), None)
        if found is not None:
            what = "calls" if name == "Call" else f"{name.lower()} tags"
            raise TemplateSyntaxError(f"{what} are not allowed in message content", found.lineno)
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _LOOP_BUDGET_FILTER, [], [], None, None, lineno=loop.lineno)
    tree = _with_bounded_concat(tree)
    for used in tree.find_all(nodes.Filter):
        if used.name not in env.filters:
            raise TemplateSyntaxError(f"no filter named {used.name!r} in message content", used.lineno)
    return env.from_string(tree)


def _with_bounded_concat(tree: Any) -> Any:
    """Every `a ~ b ~ ...` rewritten into the bounded concat filter (`{% set a = a ~ a %}` doubles a string)."""
    from jinja2 import nodes
    from jinja2.visitor import NodeTransformer

    class Rewrite(NodeTransformer):
        def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
            listed = nodes.List([self.visit(child) for child in node.nodes], lineno=node.lineno)
            return nodes.Filter(listed, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)

    return Rewrite().visit(tree)


def check_templates(content: Mapping[Any, Mapping[str, Any]], *, where: str = "content") -> None:
    """Every text part compiles, else an `InvalidInput` naming the part."""
    from jinja2 import TemplateSyntaxError

    for channel, parts in content.items():
        for name, value in _texts(parts, ""):
            try:
                _compiled(value)
            except TemplateSyntaxError as exc:
                raise InvalidInput(
                    f"{where}.{channel}.{name} is not a valid template: {exc.message}",
                    field=f"{where}.{channel}.{name}",
                ) from exc


def render_parts(parts: Mapping[str, Any], *, profile: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The channel's parts with every text rendered; the HTML part escapes what it inserts.

    The profile is also `customer`, the name personalization's stored templates use (`customer.first_name`).
    """
    context = {**profile, "profile": dict(profile), "customer": dict(profile), "data": dict(data)}
    return {
        name: _render(value, context, html=name == "html", one_line=name in HEADER_PARTS)
        for name, value in parts.items()
    }


def _render(value: Any, context: Mapping[str, Any], *, html: bool, one_line: bool = False) -> Any:
    if isinstance(value, str):
        text = value if "{" not in value else _render_text(value, context, html=html)
        return " ".join(text.splitlines()) if one_line and ("\n" in text or "\r" in text) else text
    if isinstance(value, list):
        return [_render(v, context, html=html) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context, html=html) for k, v in value.items()}
    return value


def _render_text(value: str, context: Mapping[str, Any], *, html: bool) -> str:
    token = _budget.set([MAX_LOOP_ITERATIONS])
    try:
        template = _compiled(value) if not html else _compiled("{% autoescape true %}" + value + "{% endautoescape %}")
        produced: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderFailed(f"the rendered text is longer than {MAX_OUTPUT_CHARS} characters")
            produced.append(chunk)
        return "".join(produced)
    except RenderFailed:
        raise
    except Exception as exc:  # a template's own runtime error: this message cannot be rendered
        raise RenderFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _budget.reset(token)


def _texts(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _texts(v, f"{path}[{i}]")]
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in _texts(v, f"{path}.{k}" if path else str(k))]
    return []
