"""`ecrm personalization ...`: train the recommender and evaluate algorithms offline.

The group lists its commands here; each is defined in `eval_commands` or `train_commands`.
numpy/scipy are imported inside the commands so `ecrm --help` stays fast.
"""

from __future__ import annotations

import click

from ecrm_ops.personalization.eval_commands import evaluate_command
from ecrm_ops.personalization.train_commands import train_command


@click.group(commands=[evaluate_command, train_command])
def personalization() -> None:
    """Recommendations: offline evaluation and training."""
