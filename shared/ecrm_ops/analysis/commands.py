"""`ecrm analysis ...`: the analyst's commands, reading any CSV of transactions.

Each command module attaches its commands to the `analysis` group; `ecrm_ops.cli` imports them.
numpy/scipy/scikit-learn are imported inside the commands so `ecrm --help` stays fast.
"""

from __future__ import annotations

import click


@click.group()
def analysis() -> None:
    """Customer analytics from a CSV of transactions: CLV, RFM, clusters, churn."""
