"""The filters a content template may use, and the locale-aware formatting behind them.

A closed list on purpose: jinja2's full set includes `attr`, `format`, `map` and friends that
reach into objects or build unbounded output, and a filter is the only way a template calls code.
Each entry says what it does (for the editor) and what it returns (for the save-time check:
`first` of a list of items is an item, so `(recommendations|first).name` is checked too).

Money, numbers and dates follow the message's locale from small tables rather than CLDR (no
Babel in the runtime layer): the languages the platform ships content in, with the common
regional differences. Outside HTML the separators are plain spaces, because a no-break space is
not in the GSM-7 alphabet and would turn an SMS into UCS-2 (half the room per segment).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from jinja2 import pass_context
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context, Undefined
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

Returns = Literal["value", "same", "item", "batches"]


@dataclass(frozen=True)
class FilterSpec:
    doc: str
    returns: Returns = "value"


class JsonText(str):
    """Already JSON: a webhook body's finalizer passes it through instead of encoding it again."""

    __slots__ = ()


# -- locale tables -------------------------------------------------------------------------------
# (decimal separator, group separator, pattern) by language or language-REGION
_NUMBER_STYLES: dict[str, tuple[str, str, str]] = {
    "en": (".", ",", "{symbol}{number}"),
    "fr": (",", " ", "{number} {symbol}"),
    "de": (",", ".", "{number} {symbol}"),
    "de-AT": (",", " ", "{symbol} {number}"),
    "de-CH": (".", "'", "{symbol} {number}"),
    "es": (",", ".", "{number} {symbol}"),
    "it": (",", ".", "{number} {symbol}"),
    "nl": (",", ".", "{symbol} {number}"),
    "pt": (",", " ", "{number} {symbol}"),
    "pt-BR": (",", ".", "{symbol} {number}"),
}
_SYMBOLS = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "BRL": "R$",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "MXN": "MX$",
    "CHF": "CHF",
    "SEK": "kr",
    "NOK": "kr",
    "DKK": "kr.",
    "PLN": "zł",
}
_LOCAL_DOLLARS = {"CA": "CAD", "AU": "AUD", "NZ": "NZD", "MX": "MXN"}  # "$" at home
_NO_DECIMALS = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})
_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
}
_LONG_DATES = {
    "en": "{day} {month} {year}",
    "en-US": "{month} {day}, {year}",
    "de": "{day}. {month} {year}",
    "es": "{day} de {month} de {year}",
    "pt": "{day} de {month} de {year}",
}
_SHORT_DATES = {"en-US": "{m:02}/{d:02}/{y}", "de": "{d:02}.{m:02}.{y}", "nl": "{d:02}-{m:02}-{y}"}


@lru_cache(maxsize=256)
def _by_locale(table_name: str, locale: str) -> Any:
    """The most specific entry for a locale: language-REGION, then language, then English."""
    tables: dict[str, dict[str, Any]] = {
        "numbers": _NUMBER_STYLES,
        "long": _LONG_DATES,
        "short": _SHORT_DATES,
        "months": _MONTHS,
    }
    table = tables[table_name]
    parts = locale.replace("_", "-").split("-")
    language = parts[0].lower()
    region = parts[-1].upper() if len(parts) > 1 else ""
    for key in (f"{language}-{region}", language, "en"):
        if key in table:
            return table[key]
    return None


def _locale_of(context: Context) -> str:
    """From the render's own variables (`parent`): a template's `{% set locale %}` cannot change it."""
    locale = context.parent.get("locale")
    return locale if isinstance(locale, str) and locale else "en"


def _as_number(value: Any) -> float | int | Decimal | None:
    kind = type(value)
    if kind is float or kind is int or kind is Decimal:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


@lru_cache(maxsize=512)
def _number_style(locale: str, space: str) -> dict[int, str]:
    """How to turn Python's `1,234.50` into the locale's digits (a `str.translate` table)."""
    decimal_sep, group_sep, _ = _by_locale("numbers", locale)
    return {ord(","): space if group_sep == " " else group_sep, ord("."): decimal_sep}


_MONEY_STYLES: dict[tuple[str, str, str], tuple[str, dict[int, str], str, str]] = {}


def _money_style(locale: str, currency: str, space: str) -> tuple[str, dict[int, str], str, str]:
    """(format spec, digits table, prefix, suffix) for one locale and currency, worked out once."""
    key = (locale, currency, space)
    style = _MONEY_STYLES.get(key)
    if style is None:
        region = locale.replace("_", "-").split("-")[-1].upper() if "-" in locale or "_" in locale else ""
        symbol = "$" if _LOCAL_DOLLARS.get(region) == currency else _SYMBOLS.get(currency, currency)
        prefix, _, suffix = _by_locale("numbers", locale)[2].replace("{symbol}", symbol).partition("{number}")
        spec = ",.0f" if currency in _NO_DECIMALS else ",.2f"
        style = (spec, _number_style(locale, space), prefix.replace(" ", space), suffix.replace(" ", space))
        if len(_MONEY_STYLES) > 4096:  # locales and currencies come from data: keep the table bounded
            _MONEY_STYLES.clear()
        _MONEY_STYLES[key] = style
    return style


def format_number(value: Any, decimals: int, locale: str, space: str) -> str | None:
    number = _as_number(value)
    if number is None:
        return None
    text = format(abs(number), f",.{max(0, min(int(decimals), 6))}f").translate(_number_style(locale, space))
    return f"-{text}" if number < 0 else text


_FORMATTED_MONEY: dict[tuple[type, Any, Any, str, str], str | None] = {}


def format_money(value: Any, currency: Any, locale: str, space: str) -> str | None:
    """Memoised: a campaign prints the same few hundred prices in the same few locales many times."""
    key = (value.__class__, value, currency, locale, space)  # the class: True == 1, but True is no price
    try:
        return _FORMATTED_MONEY[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable value: format it, do not remember it
        return _format_money(value, currency, locale, space)
    if len(_FORMATTED_MONEY) >= 20_000:
        _FORMATTED_MONEY.clear()
    text = _FORMATTED_MONEY[key] = _format_money(value, currency, locale, space)
    return text


def _format_money(value: Any, currency: Any, locale: str, space: str) -> str | None:
    number = _as_number(value)
    if number is None:
        return None
    code = currency.upper() if isinstance(currency, str) and currency else "EUR"
    spec, table, prefix, suffix = _money_style(locale, code, space)
    if number < 0:
        return "-" + prefix + format(-number, spec).translate(table) + suffix
    return prefix + format(number, spec).translate(table) + suffix


def format_date(value: Any, style: str, locale: str) -> str | None:
    when = _as_date(value)
    if when is None:
        return None
    if style == "iso":
        return when.isoformat()
    if style == "short":
        pattern = _by_locale("short", locale) or "{d:02}/{m:02}/{y}"
        return str(pattern.format(d=when.day, m=when.month, y=when.year))
    months = str(_by_locale("months", locale)).split()
    pattern = _by_locale("long", locale) or "{day} {month} {year}"
    return str(pattern.format(day=when.day, month=months[when.month - 1], year=when.year))


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            return None
    return None


# -- the filters ---------------------------------------------------------------------------------
def default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """Unlike jinja2's, None and "" count as missing too: data from a store is rarely undefined."""
    if isinstance(value, Undefined) or value is None or value == "" or (boolean and not value):
        return fallback
    return value


def _money_filter(space: str) -> Callable[..., Any]:
    @pass_context
    def money(context: Context, value: Any, currency: Any = None) -> Any:
        if isinstance(value, Undefined):
            return value
        if currency is None or isinstance(currency, Undefined):
            brand = context.parent.get("brand")
            currency = brand.get("currency") if isinstance(brand, dict) else None
        text = format_money(value, currency, _locale_of(context), space)
        return value if text is None else text

    return money


def _number_filter(space: str) -> Callable[..., Any]:
    @pass_context
    def number(context: Context, value: Any, decimals: int = 0) -> Any:
        if isinstance(value, Undefined):
            return value
        text = format_number(value, decimals, _locale_of(context), space)
        return value if text is None else text

    return number


@pass_context
def date_filter(context: Context, value: Any, style: str = "long") -> Any:
    if isinstance(value, Undefined):
        return value
    text = format_date(value, style, _locale_of(context))
    return value if text is None else text


def _missing_passes_through(function: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        return value if isinstance(value, Undefined) else function(value, *args, **kwargs)

    return guarded


def tojson_text(value: Any) -> JsonText:
    if isinstance(value, Undefined):
        return JsonText("null")
    return JsonText(json.dumps(value, ensure_ascii=False, default=str))


def tojson_html(value: Any) -> Markup:
    return htmlsafe_json_dumps(None if isinstance(value, Undefined) else value, dumps=json.dumps, default=str)


FILTER_DOCS: dict[str, FilterSpec] = {
    "default": FilterSpec(
        "Fallback when the value is missing, None or empty: {{ customer.first_name|default('there') }}", "same"
    ),
    "d": FilterSpec("Short for default", "same"),
    "money": FilterSpec(
        "Amount in the message locale: {{ item.price|money(item.currency) }} (brand currency by default)"
    ),
    "number": FilterSpec("Number in the message locale: {{ customer.loyalty_points|number }}, decimals as argument"),
    "date": FilterSpec("Date in the message locale: 'long' (default, 30 April 2030), 'short' (30/04/2030) or 'iso'"),
    "upper": FilterSpec("UPPER CASE"),
    "lower": FilterSpec("lower case"),
    "title": FilterSpec("Title Case"),
    "capitalize": FilterSpec("First letter upper case, the rest lower case"),
    "trim": FilterSpec("Strip surrounding whitespace"),
    "truncate": FilterSpec("Shorten to a length (default 255) ending with '...': {{ item.name|truncate(30) }}"),
    "striptags": FilterSpec("Remove HTML tags and collapse whitespace"),
    "escape": FilterSpec("HTML-escape (HTML parts escape every value already)"),
    "e": FilterSpec("Short for escape"),
    "urlencode": FilterSpec("Percent-encode for a URL query string"),
    "string": FilterSpec("Convert to text"),
    "int": FilterSpec("Convert to a whole number (0 when not a number)"),
    "float": FilterSpec("Convert to a number (0.0 when not a number)"),
    "round": FilterSpec("Round: {{ customer.clv|round(1) }}"),
    "length": FilterSpec("Number of items or characters"),
    "count": FilterSpec("Short for length"),
    "first": FilterSpec("First item of a list", "item"),
    "last": FilterSpec("Last item of a list", "item"),
    "join": FilterSpec("Join a list with a separator: {{ recommendations|join(', ', attribute='name') }}"),
    "sort": FilterSpec("Sort a list: {{ recommendations|sort(attribute='price') }}", "same"),
    "batch": FilterSpec(
        "Split a list into rows of n items, for product grids: {% for row in recommendations|batch(2) %}", "batches"
    ),
    "tojson": FilterSpec("The value as JSON (in a webhook body every value is JSON already)"),
}


def filters_for(kind: Literal["html", "text", "json"]) -> dict[str, Callable[..., Any]]:
    """The filter table of one environment: the documented filters and nothing else."""
    space = "\u00a0" if kind == "html" else " "
    builtin = {name: JINJA_FILTERS[name] for name in FILTER_DOCS if name in JINJA_FILTERS}
    table: dict[str, Callable[..., Any]] = {
        **builtin,
        "default": default,
        "d": default,
        "money": _money_filter(space),
        "number": _number_filter(space),
        "date": date_filter,
        "round": _missing_passes_through(JINJA_FILTERS["round"]),
        "tojson": tojson_html if kind == "html" else tojson_text,
    }
    return {name: table[name] for name in FILTER_DOCS}
