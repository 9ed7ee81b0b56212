"""A need described in words ("a quiet kettle for tea") matched to products: Okapi BM25 over what a product is
called, its category and its attributes, as plain dictionaries (no numpy or scikit-learn on the request path).

The same terms are written by the catalogue store as postings (one per term and product, with the term's
frequency and the product's length), so a query reads the postings of its few terms and scores them here;
`NeedIndex` keeps them in memory for tests and the benchmark. The description is not indexed: it is prose
whose words would outvote the name, and a product's terms stay few enough to be written in one transaction.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecrm.transactions.catalog import ProductIn

K1 = 1.2
B = 0.75
MAX_TERMS = 40  # distinct terms indexed per product: old and new postings fit one DynamoDB transaction
NAME_WEIGHT = 2  # a word of the name counts twice: "kettle" named beats "kettle" as an attribute
MAX_QUERY_TERMS = 8

_STOPWORD_TEXT = (
    "a an and are as at be by for from i in is it me my of on or that the this to with want need looking some "
    "something any which who will would like please good new"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")


def _fold(text: str) -> str:
    """Lower case without accents: "Café" and "cafe" are one word to a shopper."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    """A light plural folding ("kettles" -> "kettle", "boxes" -> "box"); enough for product words."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(_fold(text)) if w.isdigit() or (w not in STOPWORDS and len(w) > 1)]


def product_terms(product: ProductIn) -> Counter[str]:
    """Term frequencies of a product: its name (weighted), category words, attribute names and values."""
    terms: Counter[str] = Counter()
    for _ in range(NAME_WEIGHT):
        terms.update(tokenize(product.name))
    terms.update(tokenize(product.category.replace("-", " ").replace("_", " ")))
    for name, value in product.attributes.items():
        terms.update(tokenize(f"{name.replace('_', ' ')} {value}"))
    if len(terms) > MAX_TERMS:
        terms = Counter(dict(sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TERMS]))
    return terms


def query_terms(query: str) -> list[str]:
    """The query's distinct terms, in their order, at most `MAX_QUERY_TERMS`."""
    return list(dict.fromkeys(tokenize(query)))[:MAX_QUERY_TERMS]


@dataclass(frozen=True)
class Posting:
    product_id: str
    frequency: int
    length: int  # the product's total term count


def bm25(
    terms: Iterable[str], postings: Mapping[str, list[Posting]], *, documents: int, average_length: float
) -> list[tuple[str, float]]:
    """Products scored by BM25 for the terms, best first; ties by product id so the order never varies."""
    scores: dict[str, float] = {}
    documents = max(documents, 1)
    average_length = average_length or 1.0
    for term in terms:
        term_postings = postings.get(term, [])
        if not term_postings:
            continue
        frequency_in_corpus = min(len(term_postings), documents)
        idf = math.log(1 + (documents - frequency_in_corpus + 0.5) / (frequency_in_corpus + 0.5))
        for posting in term_postings:
            norm = K1 * (1 - B + B * posting.length / average_length)
            tf = posting.frequency
            scores[posting.product_id] = scores.get(posting.product_id, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
    return sorted(((pid, round(score, 6)) for pid, score in scores.items()), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class NeedIndex:
    """The postings in memory: what the store keeps in DynamoDB, for tests and the benchmark's data."""

    postings: dict[str, list[Posting]] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)

    def add(self, product_id: str, product: ProductIn) -> None:
        terms = product_terms(product)
        length = sum(terms.values())
        self.lengths[product_id] = length
        for term, frequency in terms.items():
            self.postings.setdefault(term, []).append(Posting(product_id, frequency, length))

    def search(self, query: str, limit: int = 10) -> list[tuple[str, float]]:
        lengths = self.lengths.values()
        average = sum(lengths) / len(lengths) if lengths else 1.0
        return bm25(query_terms(query), self.postings, documents=len(self.lengths), average_length=average)[:limit]
