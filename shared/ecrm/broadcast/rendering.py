"""Rendering a message's content for one customer: jinja2 in a sandbox, with the customer's profile and `data`.

Templates are compiled once per process (a campaign renders the same text for every customer), and an
unknown name renders empty rather than failing a send. A template that does not compile is refused when
the message is requested, so a send never fails on syntax.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ecrm.core.errors import InvalidInput

MAX_OUTPUT_CHARS = 200_000


class RenderFailed(Exception):
    """The content could not be rendered for this customer (a runtime error in a template)."""


@lru_cache(maxsize=1)
def _environment() -> Any:
    """Imported on the first render: the API's cold start does not load jinja2 for the routes that never render."""
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


def check_templates(content: Mapping[Any, Mapping[str, Any]]) -> None:
    """Every text part compiles, else a 400 naming the part."""
    from jinja2 import TemplateSyntaxError

    for channel, parts in content.items():
        for name, value in _texts(parts, ""):
            try:
                _compiled(value)
            except TemplateSyntaxError as exc:
                raise InvalidInput(
                    f"content.{channel}.{name} is not a valid template: {exc.message}",
                    field=f"content.{channel}.{name}",
                ) from exc


def render_parts(parts: Mapping[str, Any], *, profile: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The channel's parts with every text rendered; the HTML part escapes what it inserts."""
    context = {**profile, "profile": dict(profile), "data": dict(data)}
    return {name: _render(value, context, html=name == "html") for name, value in parts.items()}


def _render(value: Any, context: Mapping[str, Any], *, html: bool) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        try:
            template = (
                _compiled(value) if not html else _compiled("{% autoescape true %}" + value + "{% endautoescape %}")
            )
            text = template.render(context)
        except Exception as exc:  # a template's own runtime error: this message cannot be rendered
            raise RenderFailed(f"{type(exc).__name__}: {exc}") from exc
        if len(text) > MAX_OUTPUT_CHARS:
            raise RenderFailed(f"the rendered text is longer than {MAX_OUTPUT_CHARS} characters")
        return text
    if isinstance(value, list):
        return [_render(v, context, html=html) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context, html=html) for k, v in value.items()}
    return value


def _texts(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _texts(v, f"{path}[{i}]")]
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in _texts(v, f"{path}.{k}" if path else str(k))]
    return []
