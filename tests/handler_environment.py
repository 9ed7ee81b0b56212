"""The configuration every handler module reads when it is imported, as its function's template sets it.

Shared by the cold-start benchmark and the cold-start import test, which import handlers in fresh
interpreters the way the Lambda runtime does.
"""

from __future__ import annotations

HANDLER_ENVIRONMENT = {
    "EVENT_BUS_NAME": "ecrm",
    "PLATFORM_TABLE_NAME": "ecrm-platform",
    "CUSTOMERS_TABLE_NAME": "ecrm-customers",
    "IMPORT_BUCKET_NAME": "ecrm-imports",
    "COLLECT_TABLE_NAME": "ecrm-collect",
    "ANALYSIS_TABLE_NAME": "ecrm-analysis",
    "PERSONALIZATION_TABLE_NAME": "ecrm-personalization",
    "BROADCAST_TABLE_NAME": "ecrm-broadcast",
    "TRANSACTIONS_TABLE_NAME": "ecrm-transactions",
    "CAMPAIGNS_TABLE_NAME": "ecrm-campaigns",
    "INSIGHTS_TABLE_NAME": "ecrm-insights",
    "LAKE_BUCKET_NAME": "ecrm-lake",
    "LAKE_DATABASE": "ecrm_lake",
    "ATHENA_WORKGROUP": "ecrm",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
