"""The data lake: Parquet in S3, described in the Glue Data Catalog, fed by Firehose.

One bucket holds every table under `<table>/dt=yyyy-MM-dd/` (Hive-style partitions), one Glue
database describes them, and each table has its own Firehose delivery stream that turns the JSON
records producers put into Parquet with the table's own schema. Athena reads the tables with
partition projection on `dt`, so no crawler and no `MSCK REPAIR` is ever needed; locally the same
files are read by DuckDB with the same SQL (`infra.local.lake.LocalLake`).

The first table, `collected_events`, holds one flat record per collected event (see
`ecrm.collect.lake_records.collected_event_record`):

| column             | type      |                                                  |
|--------------------|-----------|--------------------------------------------------|
| message_id         | string    | the message's id (the deduplication key)         |
| type               | string    | identify, track, page, screen, group, alias      |
| source_id          | string    | the source that sent it                          |
| source_name        | string    |                                                  |
| user_id            | string    |                                                  |
| anonymous_id       | string    |                                                  |
| event              | string    | track calls                                      |
| name               | string    | page and screen calls                            |
| category           | string    | page and screen calls                            |
| properties         | string    | compact JSON                                     |
| traits             | string    | compact JSON                                     |
| context            | string    | compact JSON                                     |
| timestamp          | timestamp | when it happened (client time, skew corrected)   |
| original_timestamp | timestamp | the client's own timestamp                       |
| sent_at            | timestamp |                                                  |
| received_at        | timestamp | when the platform received it                    |
| dt                 | string    | partition: the day (UTC) Firehose received it    |

Producers send timestamps as ISO 8601 with `Z` (the OpenX JSON SerDe reads that form) and JSON
members as strings, so a new key in `properties` never needs a schema change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.settings import DeploymentSettings

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARTITION_KEY = "dt"
PARTITION_FORMAT = "yyyy-MM-dd"  # Java date format: Firehose's !{timestamp:...} and Athena's projection
PROJECTION_START = "2025-01-01"
DELIVERY_LOG_STREAM = "DestinationDelivery"
BUFFER_SIZE_MB = 128  # Firehose's maximum; format conversion needs at least 64
# Firehose's own bounds are 0-900 s; a lake table is read in minutes, not seconds.
MIN_BUFFER_INTERVAL = Duration.seconds(60)
MAX_BUFFER_INTERVAL = Duration.seconds(300)
# Format conversion and the S3 put after a buffer closes: seconds, with room for a slow minute.
DELIVERY_MARGIN = Duration.seconds(60)
# A queue whose delivery delay waits out Firehose buffering carries this tag: the local cloud's
# Firehose emulation delivers at once, so it provisions such a queue without the delay.
WAITS_FOR_LAKE_DELIVERY_TAG = "ecrm:delay-waits-for"
WAITS_FOR_LAKE_DELIVERY = "firehose-buffering"


def data_prefix(table: str) -> str:
    """Where Firehose writes a table's Parquet objects (and Athena/DuckDB read them)."""
    return f"{table}/{PARTITION_KEY}=!{{timestamp:{PARTITION_FORMAT}}}/"


def error_prefix(table: str) -> str:
    """Where records that do not fit the table's schema go, as Firehose's JSON error documents."""
    return f"errors/{table}/!{{firehose:error-output-type}}/{PARTITION_KEY}=!{{timestamp:{PARTITION_FORMAT}}}/"


class LakeStream(Construct):
    """A lake table: its Glue table and the Firehose delivery stream that writes it as Parquet."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: Lake,
        table: str,
        columns: Sequence[tuple[str, str]],
        description: str,
        buffer_interval: Duration = MAX_BUFFER_INTERVAL,
    ) -> None:
        super().__init__(scope, construct_id)
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", table):
            raise ValueError(f"lake table {table!r}: use lower_snake_case (it is a Glue, Athena and S3 name)")
        if not columns or PARTITION_KEY in {name for name, _ in columns}:
            raise ValueError(f"lake table {table!r}: give columns, without the partition key {PARTITION_KEY!r}")
        interval = buffer_interval.to_seconds()
        if not MIN_BUFFER_INTERVAL.to_seconds() <= interval <= MAX_BUFFER_INTERVAL.to_seconds():
            raise ValueError(f"lake table {table!r}: buffer interval must be 60-300 s, not {interval} s")
        stack = Stack.of(self)
        settings = lake.settings
        bucket = lake.bucket
        self.table_name = table
        self.buffer_interval = buffer_interval

        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=lake.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=table,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "parquet.compression": "SNAPPY",
                    # Athena computes the partitions instead of asking the catalog: no crawler, no MSCK.
                    "projection.enabled": "true",
                    f"projection.{PARTITION_KEY}.type": "date",
                    f"projection.{PARTITION_KEY}.format": PARTITION_FORMAT,
                    f"projection.{PARTITION_KEY}.range": f"{PROJECTION_START},NOW",
                    f"projection.{PARTITION_KEY}.interval": "1",
                    f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
                    "storage.location.template": f"s3://{bucket.bucket_name}/{table}/{PARTITION_KEY}=${{{PARTITION_KEY}}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_KEY, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=kind) for name, kind in columns],
                    location=f"s3://{bucket.bucket_name}/{table}/",
                    input_format=PARQUET_INPUT_FORMAT,
                    output_format=PARQUET_OUTPUT_FORMAT,
                    compressed=False,
                    stored_as_sub_directories=False,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
                    ),
                ),
            ),
        )

        self.log_group = logs.LogGroup(
            self,
            "DeliveryLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=settings.removal_policy,
        )
        log_stream = logs.LogStream(
            self,
            "DeliveryLogStream",
            log_group=self.log_group,
            log_stream_name=DELIVERY_LOG_STREAM,
            removal_policy=settings.removal_policy,
        )

        self.role = iam.Role(
            self,
            "DeliveryRole",
            # Firehose passes the account as the external id: no other account's stream can use the role.
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
            description=f"Firehose writes the lake table {table} as Parquet",
        )
        glue_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        object_arns = [bucket.arn_for_objects(f"{table}/*"), bucket.arn_for_objects(f"errors/{table}/*")]
        policy = iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    resources=[bucket.bucket_arn],
                ),
                iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=object_arns),
                iam.PolicyStatement(
                    actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                    resources=[
                        f"{glue_arn}:catalog",
                        f"{glue_arn}:database/{lake.database_name}",
                        f"{glue_arn}:table/{lake.database_name}/{table}",
                    ],
                ),
                iam.PolicyStatement(
                    actions=["logs:PutLogEvents"],
                    resources=[
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
            ],
        )
        bucket_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Firehose names each object itself (date, stream, random suffix): it may put objects under "
            "this table's data and error prefixes of the lake bucket, nowhere else.",
            applies_to=[f"Resource::<{bucket_id}.Arn>/{table}/*", f"Resource::<{bucket_id}.Arn>/errors/{table}/*"],
        )

        destination = firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
            bucket_arn=bucket.bucket_arn,
            role_arn=self.role.role_arn,
            prefix=data_prefix(table),
            error_output_prefix=error_prefix(table),
            file_extension=".parquet",
            compression_format="UNCOMPRESSED",  # Parquet compresses its pages itself (Snappy)
            buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                size_in_m_bs=BUFFER_SIZE_MB, interval_in_seconds=int(interval)
            ),
            cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                enabled=True, log_group_name=self.log_group.log_group_name, log_stream_name=log_stream.log_stream_name
            ),
            data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                enabled=True,
                input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                    deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                        open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty(case_insensitive=True)
                    )
                ),
                output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                    serializer=firehose.CfnDeliveryStream.SerializerProperty(
                        parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(compression="SNAPPY")
                    )
                ),
                schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                    catalog_id=stack.account,
                    database_name=lake.database.ref,
                    table_name=self.table.ref,
                    region=stack.region,
                    role_arn=self.role.role_arn,
                    version_id="LATEST",
                ),
            ),
        )
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_name=settings.name(f"lake-{table.replace('_', '-')}"),
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK")
            ),
            extended_s3_destination_configuration=destination,
        )
        # Firehose checks its role's permissions when the stream is created.
        self.stream.node.add_dependency(policy)
        self.stream_name: str = self.stream.ref
        self.stream_arn: str = self.stream.attr_arn

    @property
    def settled_after(self) -> Duration:
        """How long after a put its record is surely in S3: the buffering interval and a margin for delivery."""
        return Duration.seconds(self.buffer_interval.to_seconds() + DELIVERY_MARGIN.to_seconds())

    def grant_put(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` put records (PutRecord, PutRecordBatch) into this table's stream."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
            resource_arns=[self.stream_arn],
        )


class Lake(Construct):
    """The lake bucket (with its access-log bucket) and the Glue database of the lake's tables."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        stack = Stack.of(self)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=settings.removal_policy,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", "This bucket receives the lake bucket's access logs.")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="lake/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="infrequent-access-after-90-days",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(90)
                        )
                    ],
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
            ],
            removal_policy=settings.removal_policy,
        )
        self.database_name = settings.name("lake").replace("-", "_")
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="eCRM data lake: Parquet tables in S3, partitioned by day (dt)",
                location_uri=f"s3://{self.bucket.bucket_name}/",
            ),
        )
        self.streams: dict[str, LakeStream] = {}

    def add_table(
        self,
        construct_id: str,
        *,
        table: str,
        columns: list[tuple[str, str]],
        description: str,
        buffer_interval: Duration = MAX_BUFFER_INTERVAL,
    ) -> LakeStream:
        """A Glue table `table` (Parquet under `s3://<bucket>/<table>/dt=.../`) and its Firehose stream."""
        if table in self.streams:
            raise ValueError(f"lake table {table!r} is already defined")
        stream = LakeStream(
            self,
            construct_id,
            lake=self,
            table=table,
            columns=columns,
            description=description,
            buffer_interval=buffer_interval,
        )
        self.streams[table] = stream
        return stream
