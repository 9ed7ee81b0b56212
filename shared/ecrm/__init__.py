"""eCRM platform: the domain package shared by every Lambda function, the CLI and the local cloud.

Each engine is a subpackage with `models` (its pydantic contract), `logic` (pure domain rules, no
boto3, no environment) and `store` (its persistence). `ecrm.core` holds what every engine needs.
"""

__version__ = "0.1.0"
