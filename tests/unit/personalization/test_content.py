"""Content templates: every channel, locales, missing data, escaping, derived text, save-time errors, SMS, JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.personalization.content import (
    TemplateRejected,
    TemplateRenderFailed,
    compile_template,
    parse_template,
    preview,
    render,
)
from ecrm.personalization.sms import sms_stats
from ecrm.personalization.template_catalogue import build_context, describe_catalogue, sample_context
from ecrm.personalization.template_sandbox import describe_language
from pydantic import ValidationError

HTML = """<html><head><title>{{ brand.name }}</title><style>p { color: red }</style></head><body>
<div style="display: none">Just for you, {{ customer.first_name }}</div>
<h1>Hello {{ customer.first_name|default('there') }}!</h1>
<p>Picked   for
   you:</p>
<ul>
{% for item in recommendations %}
  <li><a href="{{ item.url }}">{{ item.name }}</a> {{ item.price|money(item.currency) }}</li>
{% endfor %}
</ul>
{% if offer %}<h2>{{ offer.name }}</h2><p>Code <b>{{ offer.code }}</b> until {{ offer.expires_at|date }}.</p>{% endif %}
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>"""


def template(channel: str = "email", variants: dict[str, Any] | None = None, default_locale: str = "en") -> Any:
    if variants is None:
        variants = {"en": {"subject": "Hi {{ customer.first_name|default('there') }}", "html": HTML}}
    body = {"name": "Weekly picks", "channel": channel, "default_locale": default_locale, "variants": variants}
    return parse_template(body)


def context(**customer: Any) -> dict[str, Any]:
    items = [
        {
            "id": f"sku-{n}",
            "name": f"Scarf {n}",
            "url": f"https://shop.example.com/{n}",
            "price": 10 * n,
            "currency": "EUR",
        }
        for n in (1, 2)
    ]
    offer = {"id": "off-1", "name": "Spring sale", "code": "SPRING20", "expires_at": "2030-04-30", "url": "https://o"}
    links = {"unsubscribe_url": "https://ecrm.example.com/u/1"}
    return build_context({"first_name": "Ann", **customer}, items, offer, links, {"name": "Example Shop"})


def rejection(source_template: Any) -> list[dict[str, Any]]:
    with pytest.raises(TemplateRejected) as caught:
        compile_template(source_template)
    return [p.model_dump() for p in caught.value.problems]


# -- every channel -----------------------------------------------------------------------------
def test_email_renders_subject_html_and_a_text_part_derived_from_the_html() -> None:
    # Given an email template without a text part
    compiled = compile_template(template())
    # When it is rendered for Ann
    message = render(compiled, context(), "en")
    # Then every part is there, personalised
    assert message.channel == "email"
    assert message.locale == "en"
    assert message.parts["subject"] == "Hi Ann"
    assert "<h1>Hello Ann!</h1>" in message.parts["html"]
    assert "€10.00" in message.parts["html"]
    assert message.parts["text"].startswith("HELLO ANN!\n==========\n\nPicked for you:\n\n- Scarf 1 (https://shop")


def test_sms_push_in_app_and_webhook_render() -> None:
    sms = compile_template(template("sms", {"en": {"body": "Hi {{ customer.first_name }}, code {{ offer.code }}"}}))
    push = compile_template(
        template("push", {"en": {"title": "{{ offer.name }}", "body": "For {{ customer.first_name }}"}})
    )
    in_app = compile_template(
        template(
            "in_app",
            {
                "en": {
                    "title": "{{ offer.name }}",
                    "body": "{{ customer.first_name }}, {{ offer.code }}",
                    "image_url": "{{ recommendations[0].image_url|default(brand.logo_url) }}",
                    "cta_label": "Shop",
                    "cta_url": "{{ offer.url }}",
                }
            },
        )
    )
    webhook = compile_template(template("webhook", {"en": {"body": '{"name": {{ customer.first_name }}, "n": 1}'}}))

    assert render(sms, context()).parts == {"body": "Hi Ann, code SPRING20"}
    assert render(push, context()).parts == {"title": "Spring sale", "body": "For Ann"}
    assert render(in_app, context()).parts == {
        "title": "Spring sale",
        "body": "Ann, SPRING20",
        "image_url": "",
        "cta_label": "Shop",
        "cta_url": "https://o",
    }
    assert json.loads(render(webhook, context()).parts["body"]) == {"name": "Ann", "n": 1}


# -- locales -----------------------------------------------------------------------------------
def locales() -> Any:
    return template(
        "sms",
        {
            "en": {"body": "en {{ 1234.5|money('CAD') }}"},
            "fr": {"body": "fr {{ 1234.5|money('CAD') }}"},
            "fr-ca": {"body": "fr-CA {{ 1234.5|money('CAD') }}"},
        },
    )


@pytest.mark.parametrize(
    ("requested", "variant", "body"),
    [
        ("fr-CA", "fr-CA", "fr-CA 1 234,50 $"),  # exact (keys are case-normalised)
        ("fr_ca", "fr-CA", "fr-CA 1 234,50 $"),
        ("fr-BE", "fr", "fr 1 234,50 CA$"),  # language, formatted for Belgium
        ("fr", "fr", "fr 1 234,50 CA$"),
        ("ja-JP", "en", "en CA$1,234.50"),  # default, formatted in the default's locale
        ("not a locale!", "en", "en CA$1,234.50"),
        (None, "en", "en CA$1,234.50"),
    ],
)
def test_locale_falls_back_from_exact_to_language_to_default(requested: str | None, variant: str, body: str) -> None:
    message = render(compile_template(locales()), context(), requested)
    assert (message.locale, message.parts["body"]) == (variant, body)


def test_the_customer_language_chooses_the_locale_when_none_is_given() -> None:
    message = render(compile_template(locales()), context(language="fr-CA"))
    assert message.locale == "fr-CA"


def test_dates_and_numbers_follow_the_locale() -> None:
    source = "{{ offer.expires_at|date }} {{ offer.expires_at|date('short') }} {{ customer.loyalty_points|number }}"
    compiled = compile_template(template("sms", {"en-US": {"body": source}, "de": {"body": source}}, "en-US"))
    assert render(compiled, context(loyalty_points=12500), "en-US").parts["body"] == "April 30, 2030 04/30/2030 12,500"
    assert render(compiled, context(loyalty_points=12500), "de-AT").parts["body"] == "30. April 2030 30.04.2030 12 500"


def test_a_default_locale_without_a_variant_or_a_duplicated_locale_is_invalid() -> None:
    with pytest.raises(ValidationError, match="default_locale fr has no variant"):
        template("sms", {"en": {"body": "x"}}, "fr")
    with pytest.raises(ValidationError, match="locale fr-CA appears twice"):
        template("sms", {"en": {"body": "x"}, "fr-CA": {"body": "x"}, "fr-ca": {"body": "y"}})
    with pytest.raises(ValidationError):  # an SMS template holds SMS parts
        template("sms", {"en": {"subject": "x", "html": "y"}})


# -- missing data ------------------------------------------------------------------------------
def test_missing_data_renders_defaults_never_errors() -> None:
    # Given a template that leans on data a new customer does not have
    source = (
        "Hi {{ customer.first_name|default('there') }}{{ customer.last_name }}!"
        "{% if customer.loyalty_points > 100 %} VIP{% else %} Welcome{% endif %}"
        " {{ customer.loyalty_points + 10 }}{{ recommendations[0].name|upper }}{{ offer.code }}"
        "{% for item in recommendations %}never{% endfor %}{{ customer.clv|round(1) }}{{ offer.value|money }}"
    )
    compiled = compile_template(template("sms", {"en": {"body": source}}))
    # When it renders for a customer with no data, no recommendation, no offer (None values count as missing)
    message = render(compiled, build_context({"first_name": None, "last_name": ""}, [], None, {}))
    # Then the defaults show and nothing fails
    assert message.parts["body"] == "Hi there! Welcome "


def test_build_context_reads_the_customer_store_view_and_keeps_only_catalogue_fields() -> None:
    view = {
        "customer_id": "cus_1",
        "profile": {"first_name": {"value": "Zoé", "source": "shop", "observed_at": "2025-01-01T00:00:00Z"}},
        "identities": [{"type": "phone", "value": "+33600000000"}, {"type": "email", "value": "zoe@example.com"}],
        "preferences": {"language": "fr-FR"},
        "traits": {"rfm_segment": "champions", "churn_risk": 0.2, "secret_score": 99},
        "password_hash": "nope",
    }
    ctx = build_context(view, [{"id": "a", "name": "A", "internal_margin": 0.4}], None, {"other": "x"})
    assert ctx == {
        "customer": {
            "id": "cus_1",
            "first_name": "Zoé",
            "email": "zoe@example.com",
            "language": "fr-FR",
            "rfm_segment": "champions",
            "churn_risk": 0.2,
        },
        "recommendations": [{"id": "a", "name": "A"}],
        "brand": {},
    }


def test_preview_renders_a_real_customer_record() -> None:
    compiled = compile_template(
        template("sms", {"en": {"body": "Hi {{ customer.first_name }}"}, "fr": {"body": "Salut"}})
    )
    message = preview(compiled, {"profile": {"first_name": {"value": "Zoé"}}, "preferences": {"language": "fr"}})
    assert (message.locale, message.parts["body"]) == ("fr", "Salut")
    assert preview(compiled, {"first_name": "Zoé"}, locale="en").parts["body"] == "Hi Zoé"


# -- escaping ----------------------------------------------------------------------------------
def test_customer_data_is_escaped_in_html_but_not_in_subject_or_text() -> None:
    compiled = compile_template(template())
    message = render(compiled, context(first_name='<b>Tom & "Jerry"</b>'), "en")
    assert "Hello &lt;b&gt;Tom &amp; &#34;Jerry&#34;&lt;/b&gt;!" in message.parts["html"]
    assert "<b>Tom" not in message.parts["html"]
    assert message.parts["subject"] == 'Hi <b>Tom & "Jerry"</b>'
    assert message.parts["text"].startswith('HELLO <B>TOM & "JERRY"</B>!')


# -- text from HTML ----------------------------------------------------------------------------
def test_derived_text_keeps_expressions_and_follows_the_conversion_rules() -> None:
    compiled = compile_template(template())
    derived = compiled.report.variants[0].derived_text
    # The text template is built once at save time and keeps the jinja expressions
    assert derived is not None
    assert "{{ item.name }} ({{ item.url }}) {{ item.price|money(item.currency) }}" in derived
    assert "{{ brand.name }}" not in derived  # <title> is dropped
    assert "Just for you" not in derived  # display:none pre-header is dropped
    # and renders as readable text: headings, lists, links, collapsed whitespace, no blank-line runs
    text = render(compiled, context(), "en").parts["text"]
    assert text == (
        "HELLO ANN!\n==========\n\nPicked for you:\n\n"
        "- Scarf 1 (https://shop.example.com/1) €10.00\n- Scarf 2 (https://shop.example.com/2) €20.00\n\n"
        "SPRING SALE\n-----------\n\nCode SPRING20 until 30 April 2030.\n\n"
        "Unsubscribe (https://ecrm.example.com/u/1)"
    )
    # and without data the conditional blocks leave no gaps
    bare = render(compiled, build_context({}, [], None, {}), "en").parts["text"]
    assert bare == "HELLO THERE!\n============\n\nPicked for you:\n\nUnsubscribe ()"


def test_derived_text_handles_images_in_links_entities_and_literal_braces() -> None:
    html = (
        '<p><a href="{{ offer.url }}"><img src="x.png" alt="{{ offer.name }}"></a> '
        '<a href="https://x.example">https://x.example</a> <a href="#top">Top</a> '
        '<a href="mailto:{{ brand.support_email }}">Write to us</a></p>'
        "<p>&#123;&#123; not a tag &#125;&#125; &amp; ok</p>"
    )
    compiled = compile_template(template(variants={"en": {"subject": "s", "html": html}}))
    text = render(compiled, context(), "en").parts["text"]
    assert text == "Spring sale (https://o) https://x.example Top Write to us ()\n\n{{ not a tag }} & ok"


def test_an_explicit_text_part_is_used_as_written() -> None:
    compiled = compile_template(
        template(variants={"en": {"subject": "s", "html": "<p>x</p>", "text": "T {{ offer.code }}"}})
    )
    assert render(compiled, context(), "en").parts["text"] == "T SPRING20"
    assert compiled.report.variants[0].derived_text is None


def test_a_heading_that_straddles_a_block_still_gets_a_text_part() -> None:
    # Given a heading opened inside an if and closed after it: the underline filter cannot nest
    html = "{% if offer %}<h1>{{ offer.name }}{% endif %} now</h1><p>x</p>"
    compiled = compile_template(template(variants={"en": {"subject": "s", "html": html}}))
    # Then the plain-heading fallback is used
    assert render(compiled, context(), "en").parts["text"] == "Spring sale NOW\n\nx"


# -- save-time rejection -----------------------------------------------------------------------
def test_an_unknown_field_is_rejected_with_part_locale_and_line() -> None:
    html = "<p>Hi</p>\n<p>{{ customer.first_name }}</p>\n<p>{{ customer.shoe_size }}</p>"
    problems = rejection(template(variants={"en": {"subject": "s", "html": "x"}, "fr": {"subject": "s", "html": html}}))
    assert problems == [
        {
            "locale": "fr",
            "part": "html",
            "line": 3,
            "reason": "customer has no field 'shoe_size' (fields: id, first_name, last_name, email, city, country, "
            "language, tier, loyalty_points, loyalty_tier, loyalty_balance, loyalty_points_expiring_30d, "
            "loyalty_expiring_by, rfm_segment, churn_risk, clv)",
        }
    ]


def test_fields_are_checked_through_loops_and_filters() -> None:
    source = (
        "{% for item in recommendations %}{{ item.name }}{{ item.colour }}{% endfor %}\n"
        "{{ (recommendations|first).price }}{{ (recommendations|first).weight }}\n"
        "{% for row in recommendations|batch(2) %}{% for item in row %}{{ item.size }}{% endfor %}{% endfor %}\n"
        "{{ recommendations.name }}{{ customer.first_name.initial }}{{ loop.index }}"
    )
    reasons = [(p["line"], p["reason"].split(" (")[0]) for p in rejection(template("sms", {"en": {"body": source}}))]
    assert reasons == [
        (1, "item has no field 'colour'"),
        (2, "recommendations|first has no field 'weight'"),
        (3, "item has no field 'size'"),
        (4, "recommendations is a list: loop over it or take one item, e.g. recommendations[0]"),
        (4, "customer.first_name is a value without fields"),
        (4, "unknown variable 'loop'"),
    ]


def test_a_syntax_error_is_rejected_with_its_line() -> None:
    problems = rejection(template("sms", {"en": {"body": "Hi\n{% if customer.first_name %}\nthere"}}))
    assert problems[0]["line"] == 3
    assert problems[0]["reason"].startswith("syntax error: Unexpected end of template")
    problems = rejection(template("push", {"en": {"title": "ok", "body": "a\nb {{ customer.first_name }"}}))
    assert (problems[0]["part"], problems[0]["line"]) == ("body", 2)


def test_runtime_errors_with_sample_data_are_rejected_at_save_time() -> None:
    problems = rejection(template("sms", {"en": {"body": "a\n{{ customer.first_name - 1 }}"}}))
    assert problems[0]["line"] == 2
    assert "fails with sample data" in problems[0]["reason"]


def test_the_rejection_is_a_problem_document_listing_every_problem() -> None:
    with pytest.raises(TemplateRejected) as caught:
        compile_template(template("sms", {"en": {"body": "{{ customer.a }}{{ customer.b }}"}}))
    document = caught.value.to_problem()
    assert document["status"] == 400
    assert document["type"].endswith("/template-rejected")
    assert document["detail"].startswith("body (en) line 1: customer has no field 'a'")
    assert document["detail"].endswith("(and 1 more)")
    assert len(document["problems"]) == 2


def test_data_that_breaks_a_validated_template_fails_the_render_not_the_process() -> None:
    compiled = compile_template(template("sms", {"en": {"body": "{{ customer.loyalty_points - 1 }}"}}))
    with pytest.raises(TemplateRenderFailed, match=r"body \(en\) line 1"):
        render(compiled, context(loyalty_points="lots"))


def test_compiling_the_same_template_twice_reuses_the_compiled_one() -> None:
    assert compile_template(template()) is compile_template(template())


# -- SMS length and segments -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 153 * 2, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 158 + "€", "GSM-7", 160, 1),  # extension characters count two septets
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # ... and are never split across segments
        ("д" * 70, "UCS-2", 70, 1),
        ("д" * 71, "UCS-2", 71, 2),
        ("д" * 67 * 2, "UCS-2", 134, 2),
        ("д" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "😀", "UCS-2", 71, 2),  # an emoji is two UTF-16 units
        ("", "GSM-7", 0, 0),
    ],
)
def test_sms_segments_at_the_boundaries(text: str, encoding: str, units: int, segments: int) -> None:
    stats = sms_stats(text)
    assert (stats.encoding, stats.units, stats.segments) == (encoding, units, segments)


def test_one_non_gsm_character_switches_to_ucs2_and_is_named() -> None:
    stats = sms_stats("Café, c\u2019est ça")  # é is GSM-7, the curly apostrophe and ç are not
    assert stats.encoding == "UCS-2"
    assert stats.non_gsm_characters == ["\u2019", "ç"]
    assert stats.per_segment == 70


def test_sms_stats_are_shown_at_save_time_and_on_every_render() -> None:
    compiled = compile_template(template("sms", {"en": {"body": "Hi {{ customer.first_name }}! " + "x" * 140}}))
    saved = compiled.report.variants[0].sms
    assert saved is not None
    assert (saved.encoding, saved.characters, saved.segments) == ("GSM-7", 151, 1)  # the sample name: Amélie
    assert compiled.report.variants[0].sample["body"].startswith("Hi Amélie!")
    rendered = render(compiled, context(first_name="Ann")).sms
    assert rendered is not None
    assert (rendered.encoding, rendered.characters, rendered.segments) == ("GSM-7", 148, 1)
    zoe = render(compiled, context(first_name="Zoë")).sms
    assert zoe is not None
    assert (zoe.encoding, zoe.segments) == ("UCS-2", 3)  # ë is not GSM-7


# -- webhook JSON ------------------------------------------------------------------------------
def test_webhook_json_stays_valid_whatever_the_data() -> None:
    body = (
        '{"name": {{ customer.first_name }}, "greeting": {{ "Hi " ~ customer.first_name }}, '
        '"points": {{ customer.loyalty_points }}, "city": {{ customer.city }}, "offer": {{ offer }}, '
        '"items": {{ recommendations|tojson }}}'
    )
    compiled = compile_template(template("webhook", {"en": {"body": body}}))
    tricky = 'Ann "The Hammer" O\'Neil \\ </script>\n'
    payload = json.loads(render(compiled, context(first_name=tricky, loyalty_points=7)).parts["body"])
    assert payload["name"] == tricky
    assert payload["greeting"] == "Hi " + tricky
    assert payload["points"] == 7
    assert payload["city"] is None  # missing data is null
    assert payload["offer"]["code"] == "SPRING20"
    assert [item["id"] for item in payload["items"]] == ["sku-1", "sku-2"]


def test_a_webhook_body_that_is_not_json_is_rejected_at_save_time() -> None:
    problems = rejection(template("webhook", {"en": {"body": '{"name": "{{ customer.first_name }}"}'}}))
    assert "the body is not valid JSON" in problems[0]["reason"]
    assert "without quotes" in problems[0]["reason"]


# -- what the editor shows -----------------------------------------------------------------------
def test_the_catalogue_and_filters_are_documented_with_samples() -> None:
    catalogue = describe_catalogue()
    assert catalogue["variables"]["customer"]["fields"]["first_name"]["sample"] == "Amélie"
    assert catalogue["variables"]["recommendations"]["item"]["fields"]["price"]["type"] == "value"
    assert set(describe_language()["filters"]) >= {"default", "money", "date", "upper", "lower", "title", "truncate"}
    assert len(sample_context()["recommendations"]) == 4
