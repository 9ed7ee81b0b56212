"""`ecrm analysis ...`: the analyst's commands, reading any CSV of transactions.

The group lists its commands here; each is defined in `stats_commands` (CLV, RFM) or
`model_commands` (clusters, churn). numpy/scipy/scikit-learn are imported inside the commands so
`ecrm --help` stays fast.
"""

from __future__ import annotations

import click

from ecrm_ops.analysis.model_commands import churn_command, clusters_command
from ecrm_ops.analysis.stats_commands import clv_command, rfm_command


@click.group(commands=[clv_command, rfm_command, clusters_command, churn_command])
def analysis() -> None:
    """Customer analytics from a CSV of transactions: CLV, RFM, clusters, churn."""
