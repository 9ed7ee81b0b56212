"""The recommender's training run: interactions in, a versioned model out, measured against popularity first.

Owns one run, for the scheduled job and for `ecrm personalization train`: read interactions (the lake's
`order_lines` for purchases and `behaviour_events` for the rest, through Athena in the cloud, DuckDB on the
local cloud, or any CSV), hold out the latest
interactions and measure the model against popularity on them (`evaluation.holdout` by time, then
`evaluation.compare`), train on everything (`recommenders.train`), keep the full model JSON in S3 for audit
(`models/recommender/<version>.json` in the lake bucket, as the analysis models), write what requests read to
DynamoDB with BatchWriteItem (per-item neighbour lists, popular lists, and for the most recently active
customers a precomputed "for you" list), record the version with its metrics, activate it when it beats
popularity on held-out NDCG (or when nothing serves yet), and report it with `ModelTrained`.

Bought together reads baskets: one customer's purchases on one day; when the data hold no purchase at all, all
of a customer's interactions of one day. numpy and scipy come in through `recommenders.train`: this module runs
in the job (ml layer), never on a request path.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from ecrm.core.clock import Clock
from ecrm.core.lake import ORDER_LINES, LakeTables, sql_string, timestamp_literal
from ecrm.personalization import evaluation, recommenders
from ecrm.personalization.models import ModelTrained
from ecrm.personalization.offer_service import Publisher
from ecrm.personalization.projection import PURCHASE_TYPES, HistoryPolicy
from ecrm.personalization.recommenders import RecommenderModel, TrainingConfig
from ecrm.personalization.store import PersonalizationStore

MODEL_PREFIX = "models/recommender/"
DAY = 86_400.0
Activation = Literal["if_better", "always"]


@dataclass(frozen=True)
class TrainingSettings:
    recommender: TrainingConfig = field(default_factory=TrainingConfig)
    k: int = 10  # the list length held-out metrics are computed at
    test_fraction: float = 0.2
    seed: int = 42
    retention_days: int = 30  # a version's lists expire after this: train more often than that
    for_you_size: int = 50
    for_you_customers: int = 100_000  # the most recently active customers get a precomputed list
    history_items: int = 20
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    activation: Activation = "if_better"


@dataclass
class Interactions:
    """Parallel columns, one row per interaction with an item."""

    customers: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # epoch seconds
    kinds: list[str] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)
    skipped: int = 0  # rows without a customer, an item or a readable time

    def __len__(self) -> int:
        return len(self.items)

    def add(self, customer: str, item: str, at: float, kind: str = "", category: str | None = None) -> None:
        self.customers.append(customer)
        self.items.append(item)
        self.times.append(at)
        self.kinds.append(kind)
        if category:
            self.categories[item] = category


def model_version(trained_at: datetime) -> str:
    """`20261123T101530123Z`: the training instant in UTC, so versions sort in time order as text."""
    utc = trained_at.astimezone(UTC)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}Z"


# -- reading interactions -------------------------------------------------------------------------------------
def interactions_sql(tables: LakeTables, *, since: datetime, purchase_types: frozenset[str] = PURCHASE_TYPES) -> str:
    """Interactions with an item of current customers (latest profile not deleted) since `since`, deduplicated.

    Purchases come from the lake's `order_lines` (written by the transactions engine): one `order_completed`
    row per line of an order placed since `since`, its item the line's sku, unless the order was cancelled or the
    line returned in full (a return is never a purchase, so a returned item does not teach "bought together" or
    "for you"); a line partly returned stays a purchase. Behaviour events give the rest (views, cart adds); their
    purchase events count only for a customer with no order row at all, a shop whose orders reach this platform
    as tracked events only, so an order the transactions engine holds is never counted twice.

    Table names come from `LakeTables` and the time is a typed literal: nothing in the text comes from a request.
    """
    order_lines = f'{tables.profiles.rsplit(".", 1)[0]}."{ORDER_LINES}"' if "." in tables.profiles else ORDER_LINES
    purchases = ", ".join(sql_string(kind) for kind in sorted(purchase_types))
    since_at = timestamp_literal(since)
    return (
        "WITH latest AS (SELECT customer_id FROM (SELECT customer_id, deleted, row_number() OVER "  # noqa: S608
        f"(PARTITION BY customer_id ORDER BY version DESC) AS rn FROM {tables.profiles}) ranked "
        "WHERE rn = 1 AND NOT deleted), "
        "order_rows AS (SELECT DISTINCT event_id, order_id, customer_id, kind, sku, category, quantity, occurred_at "
        f"FROM {order_lines} WHERE customer_id IS NOT NULL AND order_id IS NOT NULL), "
        "cancelled AS (SELECT DISTINCT order_id FROM order_rows WHERE kind = 'cancellation'), "
        "bought AS (SELECT customer_id, order_id, sku, max(category) AS category, "
        "min(CASE WHEN kind = 'purchase' THEN occurred_at END) AS occurred_at, sum(quantity) AS kept "
        "FROM order_rows WHERE kind IN ('purchase', 'return') AND sku IS NOT NULL "
        "AND order_id NOT IN (SELECT order_id FROM cancelled) GROUP BY customer_id, order_id, sku), "
        "product_events AS (SELECT * FROM (SELECT customer_id, event_type, occurred_at, product_id, category, "
        "row_number() OVER (PARTITION BY customer_id, event_id ORDER BY recorded_at) AS rn "
        f"FROM {tables.events} WHERE product_id IS NOT NULL AND occurred_at >= {since_at} "
        f"AND (event_type NOT IN ({purchases}) "
        "OR customer_id NOT IN (SELECT customer_id FROM order_rows))) ranked WHERE rn = 1), "
        "interactions AS (SELECT customer_id, product_id, event_type, category, occurred_at FROM product_events "
        "UNION ALL SELECT customer_id, sku AS product_id, 'order_completed' AS event_type, category, occurred_at "
        f"FROM bought WHERE kept > 0 AND occurred_at >= {since_at}) "
        "SELECT e.customer_id, e.product_id, e.event_type, e.category, CAST(e.occurred_at AS VARCHAR) AS occurred_at "
        "FROM interactions e JOIN latest l ON l.customer_id = e.customer_id"
    )


def interactions_from_lake(lake: Any, s3: Any, *, since: datetime) -> Interactions:
    """Run the query (an `ecrm.core.lake.AthenaLake`) and read its CSV result straight from S3, not paged by the API."""
    result = lake.run(interactions_sql(LakeTables.in_database(lake.database), since=since))
    bucket, key = result.output_location.removeprefix("s3://").split("/", 1)
    with tempfile.TemporaryDirectory(prefix="ecrm-interactions-") as workdir:
        path = Path(workdir) / "interactions.csv"
        s3.download_file(bucket, key, str(path))
        if path.stat().st_size == 0:
            return Interactions()
        return read_interactions_csv(
            path,
            customer_col="customer_id",
            item_col="product_id",
            time_col="occurred_at",
            type_col="event_type",
            category_col="category",
        )


def read_interactions_csv(
    path: str | Path,
    *,
    customer_col: str = "customer_id",
    item_col: str = "product_id",
    time_col: str | None = "occurred_at",
    type_col: str | None = None,
    category_col: str | None = None,
) -> Interactions:
    """A CSV with a header row: a customer and an item column, optionally time (epoch seconds or ISO 8601; without
    it, file order is time), event type and category. Raises ValueError naming a missing column."""
    data = Interactions()
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in (customer_col, item_col, time_col, type_col, category_col):
            if column is not None and column not in header:
                raise ValueError(f"no column {column!r} in {Path(path).name} (columns: {header})")
        for line, row in enumerate(reader, start=2):
            customer, item = (row.get(customer_col) or "").strip(), (row.get(item_col) or "").strip()
            at = parse_time(row.get(time_col)) if time_col else float(line)
            if not customer or not item or at is None:
                data.skipped += 1
                continue
            kind = (row.get(type_col) or "").strip() if type_col else ""
            category = (row.get(category_col) or "").strip() if category_col else ""
            data.add(customer, item, at, kind, category or None)
    return data


def parse_time(raw: str | None) -> float | None:
    """Epoch seconds, or ISO 8601 (Athena's `2026-11-23 10:15:30.123`, DuckDB's `...+00`); naive means UTC."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = float(text)
        return value if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# -- training ---------------------------------------------------------------------------------------------------
@dataclass
class TrainedRecommender:
    version: str
    trained_at: datetime
    model: RecommenderModel
    metrics: dict[str, dict[str, float]]
    evaluation: dict[str, Any]
    data: dict[str, Any]


def train_recommender(data: Interactions, *, settings: TrainingSettings, trained_at: datetime) -> TrainedRecommender:
    """Measure against popularity on held-out interactions, then train on all of them."""
    if not data:
        raise ValueError("no interactions to train on")
    metrics, evaluated = evaluate_against_popularity(data, settings)
    model = recommenders.train(
        data.customers,
        data.items,
        timestamps=data.times,
        baskets=baskets_of(data, settings.history),
        item_categories=data.categories or None,
        config=settings.recommender,
    )
    return TrainedRecommender(
        version=model_version(trained_at),
        trained_at=trained_at,
        model=model,
        metrics=metrics,
        evaluation=evaluated,
        data={
            "interactions": len(data),
            "customers": len(set(data.customers)),
            "items": len(set(data.items)),
            "skipped_rows": data.skipped,
            "from": datetime.fromtimestamp(min(data.times), UTC).isoformat(),
            "to": datetime.fromtimestamp(max(data.times), UTC).isoformat(),
        },
    )


def evaluate_against_popularity(
    data: Interactions, settings: TrainingSettings
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Hold out the latest interactions; rank them with the model (trained on the rest) and with popularity."""
    triples = list(zip(data.customers, data.items, data.times, strict=True))
    split = evaluation.holdout(triples, method="time", test_fraction=settings.test_fraction, seed=settings.seed)
    protocol: dict[str, Any] = {"split": "time", "test_fraction": settings.test_fraction, "k": settings.k}
    if not split.test or not split.train:
        return {}, protocol | {"skipped": "too few interactions: no customer has held-out items and earlier ones"}
    config = replace(settings.recommender, together_neighbours=0)
    model = recommenders.train([u for u, _, _ in split.train], [i for _, i, _ in split.train], config=config)
    history = split.train_items_by_user

    def recommend(user: str, k: int, exclude: set[str]) -> list[str]:
        return recommenders.recommend_for_user(model, history.get(user, ()), k, exclude)

    rankings = {"model": recommend, "popularity": evaluation.popularity(split.train)}
    metrics = evaluation.compare(rankings, split, k=settings.k)
    return metrics, protocol | {"test_customers": len(split.test), "algorithm": model.algorithm}


def baskets_of(data: Interactions, policy: HistoryPolicy) -> list[str]:
    """One basket per customer and day of purchases; other rows alone in theirs (they then pair with nothing)."""
    purchases = [kind in policy.purchase_types for kind in data.kinds]
    everything = not any(purchases)
    return [
        f"{customer}|{int(at // DAY)}" if everything or bought else f"#{n}"
        for n, (customer, at, bought) in enumerate(zip(data.customers, data.times, purchases, strict=True))
    ]


def for_you_lists(model: RecommenderModel, data: Interactions, settings: TrainingSettings) -> dict[str, list[str]]:
    """The personal part of "for you" for the most recently active customers: no popularity fill (the request
    adds it, after the business filters)."""
    if settings.for_you_size <= 0 or settings.for_you_customers <= 0 or not data:
        return {}
    latest = max(data.times)
    events: dict[str, list[tuple[float, str, bool]]] = {}
    purchases = settings.history.purchase_types
    for customer, item, at, kind in zip(data.customers, data.items, data.times, data.kinds, strict=True):
        events.setdefault(customer, []).append((at, item, kind in purchases))
    active = sorted(events, key=lambda c: (max(at for at, _, _ in events[c]), c), reverse=True)
    bare = replace(model, popular=[], trending=[], popular_by_category={})
    policy = settings.history
    lists: dict[str, list[str]] = {}
    for customer in active[: settings.for_you_customers]:
        weights: dict[str, float] = {}
        for at, item, bought in sorted(events[customer], reverse=True):
            if item not in weights and len(weights) >= settings.history_items:
                continue
            weight = 0.5 ** ((latest - at) / DAY / policy.half_life_days) * (1.0 if bought else policy.viewed_weight)
            weights[item] = weights.get(item, 0.0) + weight
        ranked = recommenders.recommend_for_user(bare, weights, k=settings.for_you_size)
        if ranked:
            lists[customer] = ranked
    return lists


# -- publishing -------------------------------------------------------------------------------------------------
@dataclass
class TrainingReport:
    version: str
    algorithm: str
    trained_at: datetime
    data: dict[str, Any]
    evaluation: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    activated: bool
    reason: str
    artifact: str | None = None
    written: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "algorithm": self.algorithm,
            "trained_at": self.trained_at.isoformat(),
            "data": self.data,
            "evaluation": self.evaluation,
            "metrics": self.metrics,
            "activated": self.activated,
            "reason": self.reason,
            "artifact": self.artifact,
            "written": self.written,
        }


def activation_decision(
    metrics: Mapping[str, Mapping[str, float]], *, serving: str | None, policy: Activation, k: int
) -> tuple[bool, str]:
    if policy == "always":
        return True, "activation forced"
    if serving is None:
        return True, "no model was serving"
    if not metrics:
        return True, "too few held-out interactions to compare with popularity: the newest data win"
    ours, baseline = metrics["model"]["ndcg"], metrics["popularity"]["ndcg"]
    if ours >= baseline:
        return True, f"beats popularity on held-out NDCG@{k}: {ours:.4f} vs {baseline:.4f}"
    return False, f"popularity ranks held-out items better (NDCG@{k} {baseline:.4f} vs {ours:.4f}): kept, not serving"


def run_training(
    data: Interactions,
    *,
    settings: TrainingSettings,
    clock: Clock,
    store: PersonalizationStore | None = None,
    s3: Any = None,
    bucket: str = "",
    publisher: Publisher | None = None,
) -> TrainingReport:
    """Train, and unless `store` is None (a dry run: metrics only), publish the version and report it."""
    now = clock.now()
    trained = train_recommender(data, settings=settings, trained_at=now)
    report = TrainingReport(
        version=trained.version,
        algorithm=trained.model.algorithm,
        trained_at=now,
        data=trained.data,
        evaluation=trained.evaluation,
        metrics=trained.metrics,
        activated=False,
        reason="dry run: nothing written",
    )
    if store is None:
        return report
    model = trained.model
    if s3 is not None and bucket:
        key = f"{MODEL_PREFIX}{trained.version}.json"
        document = {
            "kind": "recommender",
            "version": trained.version,
            "trained_at": now.isoformat(),
            "data": trained.data,
            "evaluation": trained.evaluation,
            "metrics": trained.metrics,
            "model": model.to_dict(),
        }
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, separators=(",", ":")).encode(),
            ContentType="application/json",
        )
        report.artifact = f"s3://{bucket}/{key}"
    expires_at = int(now.timestamp() + settings.retention_days * DAY)
    report.written["model_items"] = store.write_model_lists(
        trained.version,
        neighbours=model.neighbours,
        together=model.bought_together,
        popular=model.popular,
        trending=model.trending,
        by_category=model.popular_by_category,
        expires_at=expires_at,
    )
    activate, report.reason = activation_decision(
        trained.metrics, serving=store.active_model(), policy=settings.activation, k=settings.k
    )
    if activate:
        report.activated = store.activate_model(trained.version, at=now, force=settings.activation == "always")
        if not report.activated:
            report.reason = "a newer version is already serving"
    if report.activated:  # "for you" lists are not versioned: only the serving model writes them
        report.written["for_you_lists"] = store.write_for_you(
            trained.version, for_you_lists(model, data, settings), expires_at=expires_at
        )
    store.put_model_version(trained.version, report.to_dict() | {"stats": dict(model.stats)})
    if publisher is not None:
        publisher.publish_all([model_trained(report, settings, trained)])
    return report


def model_trained(report: TrainingReport, settings: TrainingSettings, trained: TrainedRecommender) -> ModelTrained:
    return ModelTrained(
        model_version=report.version,
        algorithm=report.algorithm,
        trained_at=report.trained_at,
        interactions=int(trained.data["interactions"]),
        customers=int(trained.data["customers"]),
        items=int(trained.data["items"]),
        k=settings.k,
        metrics={name: dict(values) for name, values in report.metrics.items()},
        activated=report.activated,
        reason=report.reason,
        artifact=report.artifact or "",
    )


@dataclass
class TrainingJob:
    """The scheduled job: the lake's interactions of the last `days` days, trained and published."""

    lake: Any  # ecrm.core.lake.AthenaLake
    s3: Any
    bucket: str
    store: PersonalizationStore
    publisher: Publisher
    clock: Clock
    settings: TrainingSettings = field(default_factory=TrainingSettings)
    days: int = 365

    def run(self, *, days: int | None = None) -> dict[str, Any]:
        since = self.clock.now() - timedelta(days=days or self.days)
        data = interactions_from_lake(self.lake, self.s3, since=since)
        if not data:
            return {"status": "skipped", "reason": f"no interactions with an item since {since.isoformat()}"}
        report = run_training(
            data,
            settings=self.settings,
            clock=self.clock,
            store=self.store,
            s3=self.s3,
            bucket=self.bucket,
            publisher=self.publisher,
        )
        return {"status": "trained", **report.to_dict()}


def columns(rows: Iterable[Sequence[Any]]) -> Interactions:
    """(customer, item, time[, kind[, category]]) tuples as `Interactions`: for tests and notebooks."""
    data = Interactions()
    for row in rows:
        customer, item, at, *rest = row
        data.add(str(customer), str(item), float(at), str(rest[0]) if rest else "", rest[1] if len(rest) > 1 else None)
    return data
