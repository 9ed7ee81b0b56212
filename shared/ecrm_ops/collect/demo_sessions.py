"""Generated browsing sessions for the demo and the benchmarks: what a shop's web site sends.

Each visitor has an anonymous id (the analytics cookie) and browses: pages, product views, some
add to cart; part of them sign up or log in (identify with a user id and an email) and go on to
checkout, the rest stay anonymous. Returned as Segment-spec messages in time order, with the
ground truth needed to check stitching.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCTS = [
    ("sku-100", "Trail running shoes", "shoes", 129.0),
    ("sku-101", "Rain jacket", "outerwear", 189.0),
    ("sku-102", "Merino base layer", "apparel", 79.0),
    ("sku-103", "Headlamp", "gear", 49.0),
    ("sku-104", "Water bottle", "gear", 19.0),
    ("sku-105", "Hiking socks", "apparel", 15.0),
    ("sku-106", "Daypack 24L", "bags", 99.0),
    ("sku-107", "Trekking poles", "gear", 89.0),
]


@dataclass
class Visitor:
    anonymous_id: str
    user_id: str | None = None
    email: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identified(self) -> bool:
        return self.user_id is not None


@dataclass
class SessionStream:
    visitors: list[Visitor]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return sorted((m for v in self.visitors for m in v.messages), key=lambda m: m["timestamp"])


def _message(kind: str, visitor: Visitor, at: datetime, rng: random.Random, **fields: Any) -> dict[str, Any]:
    message = {
        "type": kind,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "anonymousId": visitor.anonymous_id,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "context": {
            "library": {"name": "ecrm-demo", "version": "1"},
            "userAgent": "Mozilla/5.0 (demo)",
            "page": {"url": f"https://shop.example.com{fields.pop('path', '/')}"},
        },
        **fields,
    }
    if visitor.user_id and kind != "identify":
        message["userId"] = visitor.user_id
    visitor.messages.append(message)
    return message


def generate(
    visitors: int = 200,
    *,
    sign_in_share: float = 0.45,
    seed: int = 11,
    start: datetime = datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
) -> SessionStream:
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible by seed
    people = []
    for n in range(visitors):
        visitor = Visitor(anonymous_id=str(uuid.UUID(int=rng.getrandbits(128))))
        at = start + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        _message("page", visitor, at, rng, name="Home", path="/")
        viewed = rng.sample(PRODUCTS, k=rng.randint(1, 4))
        for sku, title, category, price in viewed:
            at += timedelta(seconds=rng.randint(10, 120))
            _message("page", visitor, at, rng, name=title, category=category, path=f"/p/{sku}")
            _message(
                "track",
                visitor,
                at + timedelta(seconds=1),
                rng,
                event="Product Viewed",
                properties={"product_id": sku, "name": title, "category": category, "price": price},
            )
        in_cart = [p for p in viewed if rng.random() < 0.5]
        for sku, title, category, price in in_cart:
            at += timedelta(seconds=rng.randint(5, 60))
            _message(
                "track",
                visitor,
                at,
                rng,
                event="Product Added",
                properties={"product_id": sku, "name": title, "category": category, "price": price, "quantity": 1},
            )
        if rng.random() < sign_in_share:
            visitor.user_id = f"u-{n:05d}"
            visitor.email = f"shopper{n:05d}@example.com"
            at += timedelta(seconds=rng.randint(20, 90))
            _message(
                "identify",
                visitor,
                at,
                rng,
                userId=visitor.user_id,
                traits={"email": visitor.email, "firstName": f"Shopper{n}"},
            )
            if in_cart:
                at += timedelta(seconds=rng.randint(30, 300))
                total = sum(p[3] for p in in_cart)
                _message(
                    "track",
                    visitor,
                    at,
                    rng,
                    event="Checkout Started",
                    properties={"value": total, "currency": "EUR", "products": [p[0] for p in in_cart]},
                )
        people.append(visitor)
    return SessionStream(people)
