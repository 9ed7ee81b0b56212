"""Need matching without AWS: words folded to what a shopper means, BM25 preferring the product named for the
need, and a product's indexed terms bounded so its postings fit one transaction."""

from __future__ import annotations

from ecrm.transactions.catalog import ProductIn
from ecrm.transactions.need_matching import MAX_TERMS, NeedIndex, product_terms, query_terms, tokenize


def product(name: str, category: str, **attributes: str) -> ProductIn:
    return ProductIn(name=name, category=category, attributes=attributes)


CATALOGUE = {
    "kettle-1": product("Quiet electric kettle", "kitchen", capacity="1.7 l", colour="steel"),
    "kettle-2": product("Stovetop kettle", "kitchen", material="enamel"),
    "teapot-1": product("Porcelain teapot", "kitchen", use="tea"),
    "shoe-1": product("Trail running shoes", "shoes", colour="red"),
    "mug-1": product("Café mug", "kitchen", use="tea, coffee"),
}


def index() -> NeedIndex:
    needs = NeedIndex()
    for product_id, p in CATALOGUE.items():
        needs.add(product_id, p)
    return needs


def test_words_are_folded_stemmed_and_stripped_of_filler() -> None:
    assert tokenize("I need some Kettles for the Cafés, 2 boxes") == ["kettle", "cafe", "2", "box"]
    assert query_terms("kettle KETTLE kettles") == ["kettle"]
    assert query_terms("the a of") == []


def test_the_product_named_for_the_need_ranks_first() -> None:
    assert [pid for pid, _ in index().search("a quiet kettle")][:2] == ["kettle-1", "kettle-2"]
    assert index().search("running shoes")[0][0] == "shoe-1"
    assert index().search("cafe")[0][0] == "mug-1"


def test_attributes_and_categories_match_too_but_below_names() -> None:
    hits = dict(index().search("tea"))
    assert set(hits) == {"teapot-1", "mug-1"}
    assert index().search("red")[0][0] == "shoe-1"
    assert index().search("steel kitchen")[0][0] == "kettle-1"


def test_ties_are_ordered_by_product_id_and_nothing_matches_nothing() -> None:
    needs = NeedIndex()
    needs.add("b", product("Lamp", "home"))
    needs.add("a", product("Lamp", "home"))
    assert [pid for pid, _ in needs.search("lamp")] == ["a", "b"]
    assert needs.search("submarine") == []


def test_a_product_indexes_a_bounded_number_of_terms() -> None:
    wordy = product("x", "misc", **{f"a{n}": f"word{n} other{n} more{n}" for n in range(20)})
    terms = product_terms(wordy)
    assert len(terms) == MAX_TERMS
    assert product_terms(wordy) == terms  # the same product always indexes the same terms
