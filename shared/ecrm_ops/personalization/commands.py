"""`ecrm personalization ...`: train the recommender and evaluate algorithms offline.

Command modules attach their commands to the `personalization` group; `ecrm_ops.cli` imports them.
numpy/scipy are imported inside the commands so `ecrm --help` stays fast.
"""

from __future__ import annotations

import click


@click.group()
def personalization() -> None:
    """Recommendations: offline evaluation and training."""
