"""The catalogue in the engine's table: products with every vendor's offer, the sku index, the text index of
needs, and each customer's stated comparison preferences.

Key design (table `pk`/`sk`; no index of its own):
- `PRODUCT#<product id>` / `PRODUCT`: the product as JSON (with its offers' summary: cheapest in-stock price
  per currency, fastest delivery), its `version` and its indexed `terms`. Every change is conditional on the
  version read.
- `PRODUCT#<product id>` / `OFFER#<vendor id>`: one vendor's offer. The product and all its offers share a
  partition, so a comparison reads them with one Query (50 offers are ~15 KB, one page).
- `SKU#<sku>` / `OFFER`: which product and vendor an order line's sku is, with the offer's delivery days:
  how a customer's orders are read as choices between offers. A sku belongs to one offer (conditional put).
- `TERM#<term>` / `<product id>`: a posting of the need index (`need_matching`): the term's frequency in the
  product and the product's length; a query reads the partitions of its few terms.
- `CATALOG` / `STATS`: how many products are indexed and their total length (BM25's N and average length),
  changed by `ADD` in each product's transaction.
- `SHOPPER#<customer id>` / `COMPARE_PREFERENCES`: what the customer said they value; beside it
  `COMPARE_HISTORY`: what their purchases say (`comparison.PurchaseHistory`), counted again on each of their
  order events. A comparison reads the two with one Query of the partition.
A product and its postings are written in one transaction (at most 40 terms each way, `need_matching`), an
offer with its product's summary and its sku in another, so no reader sees one without the other.
Orders (`ORDER#`, `IDEM#`), loyalty (`MEMBER#`, ...) and purchases have prefixes of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions.catalog import ComparePreferences, Offer, Product
from ecrm.transactions.comparison import PurchaseHistory
from ecrm.transactions.need_matching import Posting

PRODUCT_SK = "PRODUCT"
OFFER_PREFIX = "OFFER#"
SKU_SK = "OFFER"
STATS_KEY = {"pk": {"S": "CATALOG"}, "sk": {"S": "STATS"}}
PREFERENCES_SK = "COMPARE_PREFERENCES"
HISTORY_SK = "COMPARE_HISTORY"
MAX_POSTINGS_PER_TERM = 20_000  # a term in more products than this says little about a need
BATCH_GET_LIMIT = 100
_OFFERS = TypeAdapter(list[Offer])


def product_pk(product_id: str) -> str:
    return f"PRODUCT#{product_id}"


@dataclass(frozen=True)
class SkuPointer:
    product_id: str
    vendor_id: str
    delivery_days: int


@dataclass(frozen=True)
class IndexedProduct:
    product: Product
    terms: dict[str, int]


class StaleProduct(Exception):
    """The product changed (or was created) since it was read."""


class SkuTaken(Exception):
    """The sku belongs to another product's or vendor's offer."""


class CatalogStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- reads ---------------------------------------------------------------------------------------------
    def product(self, product_id: str) -> IndexedProduct | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": product_pk(product_id)}, "sk": {"S": PRODUCT_SK}},
            ConsistentRead=True,
        ).get("Item")
        return _indexed(item) if item else None

    def product_with_offers(self, product_id: str) -> tuple[Product | None, list[Offer]]:
        """The product and every vendor's offer for it, in one Query (paged only past 1 MB)."""
        product: Product | None = None
        offers: list[str] = []
        for item in self._query({"pk": product_pk(product_id)}):
            if item["sk"]["S"] == PRODUCT_SK:
                product = Product.model_validate_json(item["product"]["S"])
            else:
                offers.append(item["offer"]["S"])
        return product, _OFFERS.validate_json(f"[{','.join(offers)}]")  # one parse for the 50 of them

    def products(self, product_ids: Iterable[str]) -> dict[str, Product]:
        keys = [{"pk": {"S": product_pk(p)}, "sk": {"S": PRODUCT_SK}} for p in dict.fromkeys(product_ids)]
        return {
            product.product_id: product
            for product in (Product.model_validate_json(i["product"]["S"]) for i in self._batch_get(keys))
        }

    def sku_pointers(self, skus: Iterable[str]) -> dict[str, SkuPointer]:
        keys = [{"pk": {"S": f"SKU#{sku}"}, "sk": {"S": SKU_SK}} for sku in dict.fromkeys(skus)]
        return {
            item["pk"]["S"].removeprefix("SKU#"): SkuPointer(
                item["product_id"]["S"], item["vendor_id"]["S"], int(item["delivery_days"]["N"])
            )
            for item in self._batch_get(keys)
        }

    def postings(self, terms: Iterable[str]) -> dict[str, list[Posting]]:
        found: dict[str, list[Posting]] = {}
        for term in terms:
            found[term] = [
                Posting(item["sk"]["S"], int(item["tf"]["N"]), int(item["len"]["N"]))
                for item in self._query({"pk": f"TERM#{term}"}, limit=MAX_POSTINGS_PER_TERM)
            ]
        return found

    def stats(self) -> tuple[int, int]:
        """(products indexed, their total length)."""
        item = self.client.get_item(TableName=self.table, Key=STATS_KEY).get("Item") or {}
        return int(item.get("products", {}).get("N", "0")), int(item.get("length", {}).get("N", "0"))

    def preferences(self, customer_id: str) -> ComparePreferences | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"SHOPPER#{customer_id}"}, "sk": {"S": PREFERENCES_SK}}
        ).get("Item")
        return ComparePreferences.model_validate_json(item["preferences"]["S"]) if item else None

    def shopper(self, customer_id: str) -> tuple[ComparePreferences | None, PurchaseHistory | None]:
        """What the customer said and what their purchases say, in one Query of their partition."""
        stated = history = None
        for item in self._query({"pk": f"SHOPPER#{customer_id}"}):
            if item["sk"]["S"] == PREFERENCES_SK:
                stated = ComparePreferences.model_validate_json(item["preferences"]["S"])
            elif item["sk"]["S"] == HISTORY_SK:
                history = PurchaseHistory.from_json(item["history"]["S"])
        return stated, history

    # -- writes --------------------------------------------------------------------------------------------
    def save_history(self, customer_id: str, history: PurchaseHistory, *, counted_at: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"SHOPPER#{customer_id}"},
                "sk": {"S": HISTORY_SK},
                "history": {"S": history.to_json()},
                "counted_at": {"S": counted_at},
            },
        )

    def forget_shopper(self, customer_id: str) -> int:
        """Delete what comparisons kept of the customer (stated preferences, counted history); returns how many
        items went. Safe to run again: a second run finds nothing."""
        items = self._query({"pk": f"SHOPPER#{customer_id}"})
        for item in items:
            self.client.delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})
        return len(items)

    def save_product(self, product: Product, terms: Mapping[str, int], previous: IndexedProduct | None) -> None:
        """The product with its postings, the ones it no longer has deleted, and the index's counts."""
        pk = product_pk(product.product_id)
        length = sum(terms.values())
        old_terms = previous.terms if previous else {}
        old_length = sum(old_terms.values())
        condition: dict[str, Any] = (
            {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(previous.product.version)}},
            }
            if previous
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        actions: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": self._product_item(product, terms), **condition}},
            *(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            "pk": {"S": f"TERM#{term}"},
                            "sk": {"S": product.product_id},
                            "tf": {"N": str(frequency)},
                            "len": {"N": str(length)},
                        },
                    }
                }
                for term, frequency in sorted(terms.items())
            ),
            *(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"TERM#{t}"}, "sk": {"S": product.product_id}},
                    }
                }
                for t in sorted(set(old_terms) - set(terms))
            ),
        ]
        if not previous or length != old_length:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": STATS_KEY,
                        "UpdateExpression": "ADD products :n, #length :d",
                        "ExpressionAttributeNames": {"#length": "length"},
                        "ExpressionAttributeValues": {
                            ":n": {"N": "0" if previous else "1"},
                            ":d": {"N": str(length - old_length)},
                        },
                    }
                }
            )
        self._transact(actions, stale=StaleProduct(pk))

    def save_offer(self, product: Product, *, expected_version: int, offer: Offer, replaced_sku: str | None) -> None:
        """The offer, its product's new summary and its sku together; a sku it no longer has is freed."""
        pk = product_pk(product.product_id)
        owner = {":p": {"S": product.product_id}, ":v": {"S": offer.vendor_id}}
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": pk}, "sk": {"S": PRODUCT_SK}},
                    "UpdateExpression": "SET product = :product, #version = :version",
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {
                        ":product": {"S": product.model_dump_json()},
                        ":version": {"N": str(product.version)},
                        ":expected": {"N": str(expected_version)},
                    },
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "pk": {"S": pk},
                        "sk": {"S": f"{OFFER_PREFIX}{offer.vendor_id}"},
                        "offer": {"S": offer.model_dump_json()},
                    },
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "pk": {"S": f"SKU#{offer.sku}"},
                        "sk": {"S": SKU_SK},
                        "product_id": {"S": product.product_id},
                        "vendor_id": {"S": offer.vendor_id},
                        "delivery_days": {"N": str(offer.delivery_days)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk) OR (product_id = :p AND vendor_id = :v)",
                    "ExpressionAttributeValues": owner,
                }
            },
        ]
        if replaced_sku and replaced_sku != offer.sku:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"SKU#{replaced_sku}"}, "sk": {"S": SKU_SK}},
                        "ConditionExpression": "attribute_not_exists(pk) OR (product_id = :p AND vendor_id = :v)",
                        "ExpressionAttributeValues": owner,
                    }
                }
            )
        self._transact(actions, stale=StaleProduct(pk), taken=SkuTaken(offer.sku))

    def save_preferences(self, customer_id: str, preferences: ComparePreferences) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"SHOPPER#{customer_id}"},
                "sk": {"S": PREFERENCES_SK},
                "preferences": {"S": preferences.model_dump_json()},
            },
        )

    # -- plumbing ------------------------------------------------------------------------------------------
    def _product_item(self, product: Product, terms: Mapping[str, int]) -> dict[str, Any]:
        return {
            "pk": {"S": product_pk(product.product_id)},
            "sk": {"S": PRODUCT_SK},
            "product": {"S": product.model_dump_json()},
            "version": {"N": str(product.version)},
            "terms": {"S": json.dumps(dict(sorted(terms.items())))},
        }

    def _transact(self, actions: list[dict[str, Any]], *, stale: Exception, taken: Exception | None = None) -> None:
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise stale from exc
            if taken is not None and "ConditionalCheckFailed" in codes:
                raise taken from exc
            if "TransactionConflict" in codes:
                raise stale from exc
            raise

    def _query(self, keys: Mapping[str, str], limit: int | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys["pk"]}},
        }
        while True:
            response = self.client.query(**request)
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            pending: dict[str, Any] = {self.table: {"Keys": keys[start : start + BATCH_GET_LIMIT]}}
            for _ in range(5):
                response = self.client.batch_get_item(RequestItems=pending)
                items += response.get("Responses", {}).get(self.table, [])
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise ServiceUnavailable("the catalogue is throttled; retry the request")
        return items


def _indexed(item: dict[str, Any]) -> IndexedProduct:
    return IndexedProduct(Product.model_validate_json(item["product"]["S"]), json.loads(item["terms"]["S"]))
