"""The order history the tour backfills into the lake: two years of orders of the imported customers.

The orders go where the transactions engine writes its own: `OrderPlaced` events made rows by the engine's
lake record (`ecrm.transactions.lake_records.order_rows`), put on the lake's `order_lines` stream. They are in
the past, and `POST /orders` places an order now, so this is the one part of the history the API cannot take
(the shop's own orders of the collection step go through it). Everything that reads purchases reads these
rows: segments' order conditions, the model job, OLAP and the recommender's training (the personalization
step names their products in the catalogue, `history_product_id`, the lines' sku).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from ecrm_ops.tour.context import TourContext

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
    """Two years of orders for the imported customers, as an ERP backfill writes them to the lake's streams."""
    from ecrm.analysis.transactions import from_day
    from ecrm.core.lake import lake_chunks
    from ecrm.transactions.lake_records import order_rows
    from ecrm.transactions.models import OrderLineIn, OrderPlaced

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
    products = random.Random(11)  # noqa: S311 - demo data, reproducible by seed
    order_lines = []
    for n in range(len(tx)):
        index = int(tx.customer_index[n])
        if index >= len(customers):
            continue
        day = from_day(int(tx.day[n]))
        category = None
        if tx.categories is not None and tx.category_index is not None:
            category = str(tx.categories[int(tx.category_index[n])])
        product = _history_product(category, index, products) if category else None
        sku = product or f"erp-{index}-{n}"
        shelf = int(sku.rsplit("-", 1)[1]) if product and category else 0
        placed = OrderPlaced(
            order_id=f"ord_erp{index:05d}x{n:06d}",
            customer_id=customers[index],
            currency="EUR",
            channel="store",
            lines=[
                OrderLineIn(
                    sku=sku,
                    name=HISTORY_PRODUCT_NAMES[category][shelf - 1] if category and shelf else "Order",
                    category=category,
                    quantity=1,
                    unit_price_minor=round(float(tx.amount[n]) * 100),
                )
            ],
            total_minor=round(float(tx.amount[n]) * 100),
            placed_at=datetime.fromisoformat(f"{day.isoformat()}T12:00:00+00:00"),
        )
        order_lines += order_rows(placed, event_id=f"erp-{index}-{n}")
    firehose = cloud.client("firehose")
    stream = cloud.physical_id("AWS::KinesisFirehose::DeliveryStream", "LakeOrderLines")
    lines = [(r, (json.dumps(r) + "\n").encode()) for r in order_lines]
    for chunk in lake_chunks(lines):
        firehose.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": data} for _, data in chunk])
    return len(order_lines), len(customers)
