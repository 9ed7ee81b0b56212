"""The text part of an email, derived from its HTML template once, at save time.

Why a template and not a conversion per send: converting rendered HTML to text on every send
would parse a few kilobytes of HTML per recipient, several times the cost of rendering the
template itself. Instead the HTML *template* is converted once into a text *template* that keeps
the jinja expressions and statements where they were (`<a href="{{ offer.url }}">Shop</a>` becomes
`Shop ({{ offer.url }})`), and each send renders it like any other part. The only per-send work
beyond rendering is `tidy_text`: two regular expressions over the result, because blank lines
depend on which branches the data takes.

How the HTML becomes text: jinja's own lexer splits the source into literal HTML, expressions and
statements; expressions and statements are replaced by private-use placeholders, Python's
`html.parser` walks the HTML, and the placeholders are put back as jinja source. Rules:
- block elements start new lines (paragraphs and headings leave a blank line), `<br>` breaks,
  whitespace is collapsed (in `<pre>` too), `<head>`, `<style>`, `<script>`, `<title>` and `display:none` elements
  (pre-headers) are dropped;
- links read "text (url)", or just the url when the text is an image or the url itself;
- list items are "- " lines; `<h1>` and `<h2>` are upper case and underlined with = and -,
  other headings upper case;
- statements are kept even inside dropped elements and attributes, so `{% if %}` stays balanced;
  expressions inside dropped elements or attributes (other than a link's href) are dropped.
If a heading wraps half of an `{% if %}`, the underline block cannot be nested correctly: the
caller tries again with `underline=False`, and rejects the template (asking for a text part) if
that fails too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from jinja2 import Environment

_EXPRESSION, _STATEMENT, _END = "\ue000", "\ue001", "\ue002"
_PLACEHOLDER = re.compile(f"([{_EXPRESSION}{_STATEMENT}])(\\d+){_END}")
_PRIVATE = re.compile(f"[{_EXPRESSION}{_STATEMENT}{_END}]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")

_BREAKS = {
    **dict.fromkeys(("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr"), 2),
    **dict.fromkeys(
        ("div", "table", "tr", "td", "th", "ul", "ol", "li", "section", "article", "header", "footer", "nav"), 1
    ),
    **dict.fromkeys(("aside", "main", "center", "dl", "dt", "dd", "figure", "figcaption", "address", "form"), 1),
}
_DROPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"})
_UNDERLINES = {"h1": "=", "h2": "-"}
_CLOSING = ("end", "else", "elif")
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


def tidy_text(text: str) -> str:
    """The per-send cleanup of a derived text part: no trailing spaces, at most one blank line."""
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def heading(text: str, underline: str = "") -> str:
    """The filter a derived text part wraps headings in (only derived parts can use it)."""
    text = " ".join(str(text).split()).upper()
    return f"{text}\n{underline * len(text)}" if underline and text else text


def derive_text_source(html_source: str, environment: Environment, *, underline: bool = True) -> str:
    """A jinja text template from a jinja HTML template (see the module docstring)."""
    marked, pieces = _mark(html_source, environment)
    converter = _TextConverter(pieces, underline=underline)
    converter.feed(marked)
    converter.close()
    return _restore("".join(converter.out), pieces)


def _mark(source: str, environment: Environment) -> tuple[str, list[tuple[str, str]]]:
    """The source with expressions and statements as placeholders; the pieces to put back."""
    marked: list[str] = []
    pieces: list[tuple[str, str]] = []
    inner: list[str] | None = None
    for _, category, value in environment.lex(source):
        if category in ("variable_begin", "block_begin"):
            inner = []
        elif category in ("variable_end", "block_end") and inner is not None:
            kind = _EXPRESSION if category == "variable_end" else _STATEMENT
            marked.append(f"{kind}{len(pieces)}{_END}")
            pieces.append((kind, "".join(inner).strip()))
            inner = None
        elif inner is not None:
            inner.append(value)
        elif category == "data":
            marked.append(_PRIVATE.sub("", value))
    return "".join(marked), pieces


def _restore(text: str, pieces: list[tuple[str, str]]) -> str:
    def source(match: re.Match[str]) -> str:
        kind, code = pieces[int(match.group(2))]
        return f"{{{{ {code} }}}}" if kind == _EXPRESSION else f"{{%+ {code} +%}}"

    return _PLACEHOLDER.sub(source, text)


def _statements(text: str, kept_elsewhere: str = "") -> str:
    """Only the statement placeholders of a dropped text or attribute, so blocks stay balanced."""
    elsewhere = set(_PLACEHOLDER.findall(kept_elsewhere)) if kept_elsewhere else set()
    return "".join(
        m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(1) == _STATEMENT and m.groups() not in elsewhere
    )


def _literal(text: str) -> str:
    """Literal text as jinja source: a brace could start a tag once entities are decoded."""
    return text.replace("{", '{{ "{" }}') if "{" in text else text


class _TextConverter(HTMLParser):
    def __init__(self, pieces: list[tuple[str, str]], *, underline: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces = pieces
        self.underline = underline
        self.out: list[str] = []
        self.breaks = 0  # newlines owed before the next visible content
        self.space = False  # a space owed before the next visible content
        self.line_start = True
        self.bullet = ""  # "- " owed at the start of a list item
        self.list_depth = 0
        self.visible_count = 0
        self.dropped_tag = ""
        self.dropped_depth = 0
        self.links: list[tuple[str, int, int]] = []  # (href, visible count, output length) at the opening tag
        self.heading_tag = ""

    # -- output ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Pay the newlines, bullet and space owed before visible content."""
        if self.breaks:
            self.out.append("\n" * self.breaks)
            self.breaks, self.line_start, self.space = 0, True, False
        if self.bullet:
            self.out.append(self.bullet)
            self.bullet, self.line_start, self.space = "", False, False
        if self.space and not self.line_start:
            self.out.append(" ")
        self.space = False

    def visible(self, text: str) -> None:
        self.flush()
        self.out.append(text)
        self.line_start = False
        self.visible_count += 1

    def statement(self, text: str) -> None:
        """Newlines owed go before an opening statement (`for`, `if`), so a loop body does not repeat
        the break before the loop, and stay owed across a closing one (`endfor`, `else`), so they
        follow the block instead of ending every iteration."""
        for match in _PLACEHOLDER.finditer(text):
            closing = self.pieces[int(match.group(2))][1].startswith(_CLOSING)
            if self.breaks and not closing:
                self.out.append("\n" * self.breaks)
                self.breaks, self.line_start, self.space = 0, True, False
            elif self.space and not self.line_start and not self.breaks:
                self.out.append(" ")
                self.space = False
            self.out.append(match.group(0))

    def block(self, breaks: int) -> None:
        self.breaks = max(self.breaks, breaks)

    def text(self, chunk: str) -> None:
        """Literal text with placeholders in it."""
        position = 0
        for match in _PLACEHOLDER.finditer(chunk):
            self.words(chunk[position : match.start()])
            if match.group(1) == _STATEMENT:
                self.statement(match.group(0))
            elif not self.dropped_tag:
                self.visible(match.group(0))
            position = match.end()
        self.words(chunk[position:])

    def words(self, chunk: str) -> None:
        if not chunk or self.dropped_tag:
            return
        if chunk[0].isspace():
            self.space = True
        for n, word in enumerate(chunk.split()):
            if n:
                self.space = True
            self.visible(_literal(word.upper() if self.heading_tag and not self.underline else word))
        if chunk[-1].isspace():
            self.space = True

    # -- HTMLParser callbacks -------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        raw = self.get_starttag_text() or ""
        if self.dropped_tag:
            self.dropped_depth += tag == self.dropped_tag and tag not in _VOID
            self.statement(_statements(raw))
            return
        used = ""
        if tag == "a" and "href" in values:
            used = values["href"]
        elif tag == "img" and self.links and values.get("alt"):
            used = values["alt"]
        self.statement(_statements(raw, kept_elsewhere=used))
        if tag in _DROPPED or "display:none" in values.get("style", "").replace(" ", "").lower():
            if tag not in _VOID:
                self.dropped_tag, self.dropped_depth = tag, 1
            return
        if tag in _BREAKS:
            self.block(_BREAKS[tag])
        if tag == "br":
            self.breaks = min(self.breaks + 1, 2)
        elif tag == "hr":
            self.visible("----")
            self.block(2)
        elif tag in ("ul", "ol"):
            self.list_depth += 1
        elif tag == "li":
            self.bullet = "  " * max(self.list_depth - 1, 0) + "- "
        elif tag == "a":
            self.links.append((values.get("href", ""), self.visible_count, len(self.out)))
        elif tag == "img" and used:
            self.text(used)
        elif tag in _HEADINGS and not self.heading_tag:
            self.heading_tag = tag
            if self.underline:
                self.flush()
                self.out.append(f'{{%+ filter heading("{_UNDERLINES.get(tag, "")}") +%}}')

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.dropped_tag:
            if tag == self.dropped_tag:
                self.dropped_depth -= 1
                if not self.dropped_depth:
                    self.dropped_tag = ""
            return
        if tag == "a" and self.links:
            self.end_link(*self.links.pop())
        elif tag in ("ul", "ol"):
            self.list_depth = max(self.list_depth - 1, 0)
        elif tag == self.heading_tag:
            if self.underline:
                self.out.append("{%+ endfilter +%}")
            self.heading_tag = ""
        if tag in _BREAKS:
            self.block(_BREAKS[tag])

    def end_link(self, href: str, visible_at_start: int, output_at_start: int) -> None:
        url = href.strip()
        for prefix in ("mailto:", "tel:"):
            url = url.removeprefix(prefix)
        if not url or url.startswith(("#", "javascript:")):
            self.statement(_statements(href))
        elif self.visible_count == visible_at_start:  # an image or nothing: the url is the text
            self.text(url)
        elif "".join(self.out[output_at_start:]).strip() == _literal(url):
            self.statement(_statements(href))
        else:
            self.out.append(f" ({_literal(url)})")

    def handle_data(self, data: str) -> None:
        if self.dropped_tag:
            self.statement(_statements(data))
        else:
            self.text(data)

    def handle_comment(self, data: str) -> None:
        self.statement(_statements(data))

    def handle_decl(self, decl: str) -> None:
        self.statement(_statements(decl))

    def unknown_decl(self, data: str) -> None:
        self.statement(_statements(data))

    def handle_pi(self, data: str) -> None:
        self.statement(_statements(data))
