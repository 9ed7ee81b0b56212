"""Sandbox escape attempts: rejected when the template is saved, and refused again when it renders.

The second layer matters for a template that reached storage before a check existed, or through
a hole in the check: the environment itself must not hand anything out.
"""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.personalization import template_sandbox
from ecrm.personalization.content import TemplateRejected, compile_template, parse_template, render
from ecrm.personalization.template_catalogue import sample_context
from ecrm.personalization.template_sandbox import ENVIRONMENTS, SecurityError
from jinja2 import TemplateError

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ range.__self__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.application }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ().__class__.__bases__[0] }}",
    "{{ customer.__class__ }}",
    "{{ customer['__class__'] }}",
    "{{ customer['_private'] }}",
    "{{ recommendations[0].__dict__ }}",
    "{{ (recommendations|first).__class__ }}",
    "{% set key = '__cla' ~ 'ss__' %}{{ customer[key] }}",
    "{{ customer[customer.first_name] }}",
    "{{ '{0.__class__.__mro__}'.format(customer) }}",
    "{{ '{0.__class__}'.format_map(customer) }}",
    "{{ '%s'|format(customer) }}",
    "{{ customer|attr('__class__') }}",
    "{{ customer|attr('items') }}",
    "{{ recommendations|map(attribute='__class__')|list }}",
    "{{ recommendations|selectattr('__class__') }}",
    "{{ recommendations|sort(attribute='__class__') }}",
    "{{ recommendations|join(',', attribute='_secret') }}",
    "{{ customer.items() }}",
    "{{ customer.update({'tier': 'gold'}) }}",
    "{{ recommendations.append(1) }}",
    "{{ recommendations.pop() }}",
    "{{ customer.first_name.upper() }}",
    "{{ range(100000000)|length }}",
    "{{ dict(a=1) }}",
    "{% set ns = namespace(a=1) %}{% set ns.a = 2 %}",
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ customer.first_name|safe }}",
    "{% autoescape false %}{{ customer.first_name }}{% endautoescape %}",
    "{% include 'other.html' %}",
    "{% import 'macros.html' as m %}",
    "{% from 'macros.html' import x %}",
    "{% extends 'base.html' %}",
    "{% block body %}{% endblock %}",
    "{% macro m() %}{{ caller() }}{% endmacro %}",
    "{% call m() %}x{% endcall %}",
    "{% for i in recommendations recursive %}{{ loop(i) }}{% endfor %}",
    "{% for i in recommendations %}{{ loop.cycle.__globals__ }}{% endfor %}",
    "{{ customer.first_name|replace('', 'x') }}",
    "{{ customer|tojson(indent=2) }}{{ customer.x|pprint }}",
    "{{ shoe_size }}{{ customer.shoe_size }}",
]


def email(html: str) -> Any:
    body = {"name": "t", "channel": "email", "default_locale": "en", "variants": {"en": {"subject": "s", "html": html}}}
    return parse_template(body)


def sms(body: str) -> Any:
    return parse_template({"name": "t", "channel": "sms", "default_locale": "en", "variants": {"en": {"body": body}}})


@pytest.mark.parametrize("attempt", ESCAPES)
def test_an_escape_attempt_is_rejected_at_save_time_in_html(attempt: str) -> None:
    with pytest.raises(TemplateRejected) as caught:
        compile_template(email(f"<p>Hello</p>\n<p>{attempt}</p>"))
    assert caught.value.problems[0].line == 2
    assert caught.value.problems[0].part == "html"


@pytest.mark.parametrize("attempt", ESCAPES)
def test_an_escape_attempt_is_rejected_at_save_time_in_text_parts(attempt: str) -> None:
    with pytest.raises(TemplateRejected):
        compile_template(sms(attempt))


@pytest.mark.parametrize("kind", ["html", "text", "json"])
@pytest.mark.parametrize("attempt", ESCAPES)
def test_the_environment_refuses_an_escape_that_skipped_the_check(attempt: str, kind: Any) -> None:
    # Given a source that never went through check_source (stored before validation existed)
    environment = ENVIRONMENTS[kind]
    # When it is compiled and rendered, either that fails...
    try:
        output = environment.from_string(attempt).render(sample_context())
    except (SecurityError, TemplateError):  # SecurityError is a TemplateError; named for the reader
        return
    # ... or it renders nothing: an unknown name is missing data (JSON null in a webhook body), never an object
    assert output in {"", "null", "nullnull"}


def test_an_escape_hidden_behind_data_is_refused_at_render_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a check with a hole, and an escape that only runs for one customer (so the sample render passes)
    monkeypatch.setattr(template_sandbox, "check_source", lambda *args, **kwargs: [])
    attempt = "{% if customer.first_name == 'Mallory' %}{{ customer.first_name.__class__.__mro__ }}{% endif %}ok"
    compiled = compile_template(sms(attempt))
    ctx = sample_context()
    assert render(compiled, ctx).parts["body"] == "ok"
    # When Mallory's message renders, the sandbox refuses, as a domain error with the line
    ctx["customer"]["first_name"] = "Mallory"
    with pytest.raises(TemplateRejected) as caught:
        render(compiled, ctx)
    assert caught.value.problems[0].line == 1
    assert "underscore" in caught.value.problems[0].reason


def test_without_the_check_the_compiler_still_refuses_calls_includes_and_autoescape_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(template_sandbox, "check_source", lambda *args, **kwargs: [])
    for attempt in (
        "{{ customer.items() }}",
        "{% include 'x' %}",
        "{% autoescape false %}{{ customer.first_name }}{% endautoescape %}",
        "{% macro m() %}{% endmacro %}",
    ):
        with pytest.raises(TemplateRejected):
            compile_template(email(attempt))


def test_dict_methods_are_not_fields() -> None:
    # A context dict's entries are its fields; its methods are not reachable, even without the check
    output = ENVIRONMENTS["text"].from_string("[{{ customer.items }}{{ customer.get }}{{ customer.keys }}]")
    assert output.render(sample_context()) == "[]"


def test_an_html_part_cannot_switch_autoescaping_off_through_markup() -> None:
    html = ENVIRONMENTS["html"].from_string("{{ customer.first_name }}")
    assert html.render({"customer": {"first_name": "<script>x</script>"}}) == "&lt;script&gt;x&lt;/script&gt;"
