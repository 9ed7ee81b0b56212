"""Refunds and returns (negative rows) are never purchases to RFM, the features, churn or CLV.

Issue 15: the analyst CLI counted a -19.99 row as a purchase, so a customer who bought once and returned it
had two orders and a recent purchase. A refund lowers spend; it is no order, no purchase day, no sign of life.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecrm.analysis.churn import churn_labels
from ecrm.analysis.features import customer_features
from ecrm.analysis.lifetime import summarize
from ecrm.analysis.rfm import rfm
from ecrm.analysis.transactions import Transactions, to_day
from ecrm_ops.cli import main

# a: bought twice, then a refund a month later; b: bought once and returned it; c: refunds only
ROWS = [
    ("a", "2026-01-10", 40.0),
    ("a", "2026-02-10", 19.99),
    ("a", "2026-03-10", -19.99),
    ("b", "2026-01-05", 19.99),
    ("b", "2026-03-01", -19.99),
    ("c", "2026-02-01", -5.0),
]
AS_OF = date(2026, 3, 31)


def transactions() -> Transactions:
    return Transactions.from_rows(*zip(*ROWS, strict=True))


def test_rfm_counts_purchase_days_only_and_nets_spend() -> None:
    scores = rfm(transactions(), as_of=AS_OF)
    by_customer = {c: i for i, c in enumerate(scores.customers)}
    assert set(by_customer) == {"a", "b"}  # refunds alone make no customer
    a, b = by_customer["a"], by_customer["b"]
    assert (int(scores.frequency[a]), int(scores.frequency[b])) == (2, 1)
    assert int(scores.recency_days[a]) == (AS_OF - date(2026, 2, 10)).days  # the refund is no recent purchase
    assert scores.monetary[a] == pytest.approx(40.0)
    assert scores.monetary[b] == pytest.approx(0.0)


def test_features_count_orders_without_refunds() -> None:
    features = customer_features(transactions(), to_day(AS_OF))
    row = {c: i for i, c in enumerate(features.customer_ids)}
    assert set(row) == {"a", "b"}
    orders, spend = features.column("orders"), features.column("total_spend")
    assert (orders[row["a"]], orders[row["b"]]) == (2, 1)
    assert spend[row["a"]] == pytest.approx(40.0)
    assert features.column("recency_days")[row["b"]] == (AS_OF - date(2026, 1, 5)).days


def test_a_refund_in_the_window_is_no_sign_of_life() -> None:
    active, churned = churn_labels(transactions(), cutoff_day=to_day(date(2026, 2, 15)), window_days=60)
    labels = dict(zip(transactions().customers[active], churned, strict=True))
    assert labels == {"a": 1, "b": 1}


def test_clv_summary_repeat_purchases_exclude_refunds() -> None:
    summary = summarize(transactions(), calibration_end=AS_OF, period="D")
    row = {c: i for i, c in enumerate(summary.customers)}
    assert set(row) == {"a", "b"}
    assert (summary.frequency[row["a"]], summary.frequency[row["b"]]) == (1, 0)
    assert summary.monetary[row["a"]] == pytest.approx(0.0)  # the one repeat purchase was refunded


def test_the_analyst_cli_does_not_count_a_refund_as_a_purchase(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("customer_id", "date", "amount"), *ROWS])
    output = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        main,
        [
            *("analysis", "rfm", "--transactions", str(path), "--customer-col", "customer_id"),
            *("--date-col", "date", "--amount-col", "amount", "--as-of", AS_OF.isoformat(), "--output", str(output)),
        ],
    )
    assert result.exit_code == 0, result.output
    with output.open(encoding="utf-8") as handle:
        frequency = {row["customer_id"]: int(row["frequency"]) for row in csv.DictReader(handle)}
    assert frequency == {"a": 2, "b": 1}
