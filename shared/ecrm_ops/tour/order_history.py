"""The order history the tour backfills into the lake: two years of orders of the imported customers.

The analysis steps train their models on it; the personalization step names its products in the
catalogue (`history_product_id`) and trains the recommender on the same orders.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from ecrm_ops.tour.context import TourContext

HISTORY_CATEGORIES_SOURCE = "erp-history"
HISTORY_PRODUCTS_PER_CATEGORY = 5
HISTORY_TASTE_SHARE = 0.6  # orders at the customer's own shelf position in the category, the rest at bestsellers
# The backfill's products by category (ecrm_ops.analysis.synthetic.CATEGORIES), best sellers first.
HISTORY_PRODUCT_NAMES = {
    "beauty": ("Face serum", "Lip balm", "Hand cream", "Sun lotion", "Eau de toilette"),
    "books": ("Travel guide", "Cookbook", "Crime novel", "Field guide", "Road atlas"),
    "electronics": ("Headphones", "Power bank", "E-reader", "Smart watch", "Action camera"),
    "fashion": ("Wool scarf", "Linen shirt", "Leather belt", "Rain hat", "Denim jacket"),
    "home": ("Scented candle", "Throw blanket", "Coffee grinder", "Desk lamp", "Linen towels"),
    "shoes": ("Running shoes", "Trail shoes", "Sandals", "Leather boots", "Slippers"),
    "sports": ("Yoga mat", "Water bottle", "Resistance bands", "Tennis balls", "Cycling gloves"),
    "toys": ("Jigsaw puzzle", "Building blocks", "Plush bear", "Kite", "Board game"),
}


def history_product_price(category: str, shelf: int) -> float:
    """What the catalogue asks for a history product (EUR): the personalization step lists it, the orders pay it."""
    return round(9.5 + 7.25 * (shelf + len(category)), 2)


def history_product_id(category: str, shelf: int) -> str:
    """The backfilled orders' products: `<category>-<shelf>`, shelf 1 to HISTORY_PRODUCTS_PER_CATEGORY."""
    return f"{category}-{shelf}"


def _history_product(category: str, customer_index: int, rng: random.Random) -> str:
    """A customer favours one shelf position in every category (a taste a recommender can learn); other orders
    go to the category's bestsellers, the first shelves most."""
    if rng.random() < HISTORY_TASTE_SHARE:
        shelf = customer_index % HISTORY_PRODUCTS_PER_CATEGORY
    else:
        shelf = min(int(rng.expovariate(0.8)), HISTORY_PRODUCTS_PER_CATEGORY - 1)
    return history_product_id(category, shelf + 1)


def backfill_order_history(ctx: TourContext) -> tuple[int, int]:
    """Two years of orders for the imported customers, as an ERP backfill writes them to the lake's stream."""
    from ecrm.analysis.transactions import from_day
    from ecrm.core.lake import lake_chunks

    from ecrm_ops.analysis.synthetic import synthetic_transactions
    from infra.local.lake import LocalLake

    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    rows = lake.query(
        "select customer_id from (select customer_id, deleted, row_number() over "
        "(partition by customer_id order by version desc) rn from {segment_profiles}) where rn = 1 and not deleted"
    )
    customers = sorted(r["customer_id"] for r in rows)
    today = datetime.now(UTC).date()
    data = synthetic_transactions(max(len(customers), 8), mean_orders=6, seed=11, cutoff=today, days_after_cutoff=1)
    tx = data.transactions.until(data.cutoff_day)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    products = random.Random(11)  # noqa: S311 - demo data, reproducible by seed
    records = []
    for n in range(len(tx)):
        index = int(tx.customer_index[n])
        if index >= len(customers):
            continue
        day = from_day(int(tx.day[n]))
        category = None
        if tx.categories is not None and tx.category_index is not None:
            category = str(tx.categories[int(tx.category_index[n])])
        records.append(
            {
                "customer_id": customers[index],
                "event_id": f"erp-{index}-{n}",
                "event_type": "order_completed",
                "occurred_at": f"{day.isoformat()}T12:00:00.000Z",
                "amount": float(tx.amount[n]),
                "category": category,
                "product_id": _history_product(category, index, products) if category else None,
                "channel": "store",
                "source": HISTORY_CATEGORIES_SOURCE,
                "recorded_at": stamp,
            }
        )
    firehose = cloud.client("firehose")
    stream = cloud.physical_id("AWS::KinesisFirehose::DeliveryStream", "LakeBehaviourEvents")
    lines = [(r, (json.dumps(r) + "\n").encode()) for r in records]
    for chunk in lake_chunks(lines):
        firehose.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": data} for _, data in chunk])
    return len(records), len(customers)
