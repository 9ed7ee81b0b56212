"""Personalised emails rendered per second per core, beside a bare jinja2 render of the same template.

Workload: one realistic marketing email (subject; about 4 KB of table-layout HTML with a header,
a greeting, four recommended items with image, name, link and price, an offer block with code,
value and expiry date, a footer with unsubscribe and view-in-browser links; the text part derived
from the HTML at save time), rendered for ECRM_BENCH_EMAILS different customers (default 2000:
names with accents, quotes and ampersands, four items each, an offer for two in three, four
locales). The template is compiled once, untimed, as a campaign does.

Measured, one thread, each 5 passes over all customers:
- Reference: bare jinja2, `Environment().from_string(source).render(context)` of the same three
  sources (subject, HTML, derived text), with the same filters registered (`money`, `date`, the
  text part's `heading`; the sources need them to compile) and the context dict prepared
  beforehand: no sandbox, no autoescaping, no context building, no tidying, no result object.
- Our pipeline: `build_context` from the raw customer, items, offer, links and brand, then
  `render` (locale fallback, the sandboxed, autoescaped HTML, the subject, the derived text part
  and its tidy-up, the `RenderedMessage`).
- Render only: `render` over contexts built beforehand, to show what context building costs.

Figures are CPU time of this process (`time.process_time`), not wall time: "per core" is the
question, and a shared machine's other work would otherwise land in the figures. Nothing here
asserts on time; the rendered emails are checked because a benchmark of wrong output would
measure the wrong work.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ecrm.personalization.content import compile_template, parse_template, render
from ecrm.personalization.html_text import heading
from ecrm.personalization.template_catalogue import build_context
from ecrm.personalization.template_filters import filters_for
from jinja2 import Environment

from tests.bench.harness import measure, report

EMAILS = int(os.environ.get("ECRM_BENCH_EMAILS", "2000"))
REPEAT = 5
GOAL_RATE = 10_000
GOAL_RATIO = 2.0

SUBJECT = "{{ customer.first_name|default('Hello') }}, {{ recommendations|length }} picks for you"
HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ brand.name }}</title>
<style>body{margin:0;font-family:Arial,sans-serif}.item td{padding:8px}.price{font-weight:bold;color:#c00}</style>
</head><body>
<div style="display:none;max-height:0;overflow:hidden">Four picks and an offer, {{ customer.first_name }}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0">
  <tr><td align="center" style="padding:24px 0">
    <a href="{{ brand.website_url }}"><img src="{{ brand.logo_url }}" alt="{{ brand.name }}" width="160"></a>
  </td></tr>
  <tr><td style="padding:0 24px">
    <h1 style="font-size:24px">Hello {{ customer.first_name|default('there') }}!</h1>
    <p>As a {{ customer.tier|default('valued')|title }} member you have
       {{ customer.loyalty_points|default(0)|number }} points. We picked these for you:</p>
  </td></tr>
  <tr><td style="padding:0 24px">
    <table role="presentation" width="100%" cellpadding="0" cellspacing="0">
    {% for item in recommendations %}
      <tr class="item">
        <td width="96"><a href="{{ item.url }}"><img src="{{ item.image_url }}" alt="{{ item.name }}"></a></td>
        <td>
          <a href="{{ item.url }}" style="color:#222;text-decoration:none">{{ item.name|truncate(40) }}</a><br>
          <span style="color:#777">{{ item.category }}</span><br>
          <span class="price">{{ item.price|money(item.currency) }}</span>
        </td>
      </tr>
    {% endfor %}
    </table>
  </td></tr>
  {% if offer %}
  <tr><td style="padding:24px;background:#fff6e0">
    <h2 style="font-size:20px">{{ offer.name }}</h2>
    <p>{{ offer.description }}: use code <strong>{{ offer.code }}</strong>
       before {{ offer.expires_at|date }}.</p>
    <p><a href="{{ offer.url }}" style="background:#c00;color:#fff;padding:10px 16px">Shop the offer</a></p>
  </td></tr>
  {% endif %}
  <tr><td style="padding:24px;font-size:12px;color:#777">
    <p>{{ brand.name }} &middot; {{ brand.address }}</p>
    <p><a href="{{ view_in_browser_url }}">View in your browser</a> &middot;
       <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
  </td></tr>
</table>
</body></html>
"""
FIRST_NAMES = ["Amélie", "Jürgen", "Zoë", "Tom & Jerry", 'Ann "Ace"', "Ólafur", "Siobhán", "Li", "María José"]
LOCALES = ["en", "fr-FR", "de-DE", "en-US"]
CATEGORIES = ["Accessories", "Shoes", "Outerwear", "Home"]
BRAND = {
    "name": "Example Shop",
    "address": "1 Example Street, 69001 Lyon, France",
    "logo_url": "https://cdn.example.com/logo.png",
    "website_url": "https://shop.example.com",
    "currency": "EUR",
}


def workload() -> list[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None, dict[str, str], str]]:
    """(customer, four items, offer or None, links, locale) per email, different for each customer."""
    emails = []
    for n in range(EMAILS):
        customer = {
            "customer_id": f"cus_{n:09d}",
            "first_name": FIRST_NAMES[n % len(FIRST_NAMES)],
            "last_name": f"Customer{n}",
            "tier": ["gold", "silver", "bronze"][n % 3],
            "loyalty_points": (n * 37) % 5000,
            "language": LOCALES[n % len(LOCALES)],
        }
        items = [
            {
                "id": f"sku-{(n + k) % 500}",
                "name": f"Merino wool item {(n + k) % 500} in a long descriptive name",
                "url": f"https://shop.example.com/p/sku-{(n + k) % 500}?utm_campaign=weekly&c={n}",
                "image_url": f"https://cdn.example.com/sku-{(n + k) % 500}.jpg",
                "price": round(19.9 + ((n + k) % 50) * 3.5, 2),
                "currency": "EUR",
                "category": CATEGORIES[k],
            }
            for k in range(4)
        ]
        offer = (
            {
                "id": "off-spring",
                "name": "Spring sale",
                "description": "20% off your next order",
                "code": f"SPRING{n % 100:02d}",
                "value": "20%",
                "expires_at": "2030-04-30",
                "url": "https://shop.example.com/spring",
            }
            if n % 3
            else None
        )
        links = {
            "unsubscribe_url": f"https://ecrm.example.com/u/{n:08x}",
            "view_in_browser_url": f"https://ecrm.example.com/v/{n:08x}",
        }
        emails.append((customer, items, offer, links, LOCALES[n % len(LOCALES)]))
    return emails


def test_personalised_emails_per_second_per_core() -> None:
    variants = {locale: {"subject": SUBJECT, "html": HTML} for locale in ("en", "fr", "de")}
    compiled = compile_template(
        parse_template({"name": "Weekly picks", "channel": "email", "default_locale": "en", "variants": variants})
    )
    derived_text = compiled.report.variants[0].derived_text
    assert derived_text is not None
    bare_environment = Environment()
    bare_environment.filters.update(filters_for("html"), heading=heading)
    bare_parts = [bare_environment.from_string(source) for source in (SUBJECT, HTML, derived_text)]

    emails = workload()
    prepared = [build_context(c, items, offer, links, BRAND) for c, items, offer, links, _ in emails]
    bare_contexts = [{**context, "locale": email[4]} for context, email in zip(prepared, emails, strict=True)]
    checked: dict[str, Any] = {}

    def cpu(run: Any) -> float:
        started = time.process_time()
        run()
        return (time.process_time() - started) * 1000

    def bare() -> None:
        for context in bare_contexts:
            for part in bare_parts:
                part.render(context)

    def pipeline() -> None:
        for customer, items, offer, links, locale in emails:
            message = render(compiled, build_context(customer, items, offer, links, BRAND), locale)
        checked["last"] = message

    def render_only() -> None:
        for context, email in zip(prepared, emails, strict=True):
            render(compiled, context, email[4])

    for run in (bare, pipeline, render_only):  # warm caches (locale tables, money styles) up, untimed
        run()
    reference = measure("bare jinja2 render (reference)", lambda: cpu(bare), repeat=REPEAT)
    ours = measure("build_context + render", lambda: cpu(pipeline), repeat=REPEAT)
    rendering = measure("render only", lambda: cpu(render_only), repeat=REPEAT)

    report(
        f"Content: personalised emails (subject, HTML, text; 4 items, an offer for 2 in 3), one thread, "
        f"CPU ms per pass over {EMAILS} emails",
        [ours, rendering],
        reference,
    )
    rates = {m.name: EMAILS / (m.median / 1000) for m in (reference, ours, rendering)}
    for name, rate in rates.items():
        print(f"  {name:34} {rate:>10,.0f} emails/s per core")
    ratio = ours.median / reference.median
    print(
        f"  pipeline / bare render time: x{ratio:.2f} (goal: within x{GOAL_RATIO:.0f}, "
        f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}); pipeline rate {rates[ours.name]:,.0f}/s "
        f"(goal: at least {GOAL_RATE:,}/s per core, {'met' if rates[ours.name] >= GOAL_RATE else 'NOT met'})"
    )

    last = checked["last"]
    customer, items, offer, _, _ = emails[-1]
    assert last.locale == "en"  # en-US falls back to en
    assert last.parts["subject"] == f"{customer['first_name']}, 4 picks for you"
    assert last.parts["html"].count('class="item"') == 4
    assert items[3]["url"].replace("&", "&amp;") in last.parts["html"]
    assert (offer is not None) == ("Shop the offer" in last.parts["text"])
    assert f"\nHELLO {customer['first_name'].upper()}!\n" in last.parts["text"]
