"""Athena on the local cloud: queries run on DuckDB over the Glue tables' Parquet objects in moto's S3.

moto in process (`mock_aws`) with `infra.local.athena` installed; the lake is built through boto3
(Glue database and tables, Parquet objects written with pyarrow) and queried through boto3's
Athena client, as the analysis engine queries it.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from infra.local import athena
from infra.local.provision import EMULATED, Provisioner
from infra.local.runtime import FunctionRuntime
from infra.local.template import REGION, Template

LAKE_BUCKET = "ecrm-lake"
RESULTS_BUCKET = "ecrm-athena-results"
DATABASE = "ecrm_lake"
OUTPUT = f"s3://{RESULTS_BUCKET}/analysis/"
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
CUSTOMER_COLUMNS = [
    ("customer_id", "string"),
    ("name", "string"),
    ("tier", "string"),
    ("spend", "decimal(10,2)"),
    ("visits", "int"),
    ("joined", "date"),
    ("updated_at", "timestamp"),
    ("vip", "boolean"),
    ("score", "double"),
]
ORDER_COLUMNS = [("order_id", "string"), ("customer_id", "string"), ("amount", "double"), ("placed_at", "timestamp")]


# -- the lake -------------------------------------------------------------------------------------
def finished(athena: Any, query_id: str, timeout: float = 30) -> str:
    """The query's final state, polled for as Athena's callers poll (queries run apart from the API)."""
    deadline = time.monotonic() + timeout
    while True:
        state: str = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
        if state not in {"QUEUED", "RUNNING"}:
            return state
        assert time.monotonic() < deadline, f"query {query_id} still {state} after {timeout:.0f}s"
        time.sleep(0.02)


def parquet(columns: dict[str, pa.Array]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@dataclass
class Lake:
    s3: Any
    glue: Any
    athena: Any
    sizes: dict[str, int]

    def put(self, table: str, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=body)
        self.sizes[table] = self.sizes.get(table, 0) + len(body)

    def table(self, name: str, columns: list[tuple[str, str]], **extra: Any) -> None:
        descriptor = {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "Location": f"s3://{LAKE_BUCKET}/{name}/",
            **PARQUET,
        }
        table_input = {"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": descriptor, **extra}
        self.glue.create_table(DatabaseName=DATABASE, TableInput=table_input)

    def start(self, sql: str, **arguments: Any) -> str:
        """Start a query and wait for its final state, polling as Athena's callers do."""
        query_id = self.start_only(sql, **arguments)
        finished(self.athena, query_id)
        return query_id

    def start_only(self, sql: str, **arguments: Any) -> str:
        arguments.setdefault("ResultConfiguration", {"OutputLocation": OUTPUT})
        arguments.setdefault("QueryExecutionContext", {"Database": DATABASE})
        query_id: str = self.athena.start_query_execution(QueryString=sql, **arguments)["QueryExecutionId"]
        return query_id

    def execution(self, query_id: str) -> dict[str, Any]:
        described: dict[str, Any] = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        return described

    def rows(self, sql: str, **arguments: Any) -> list[list[str | None]]:
        """The result rows (header first) as GetQueryResults returns them, NULL as None."""
        query_id = self.start(sql, **arguments)
        state = self.execution(query_id)["Status"]
        assert state["State"] == "SUCCEEDED", state.get("StateChangeReason")
        result = self.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
        return [[datum.get("VarCharValue") for datum in row["Data"]] for row in result["Rows"]]

    def csv(self, query_id: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=RESULTS_BUCKET, Key=f"analysis/{query_id}.csv")["Body"].read()
        return body


@pytest.fixture(scope="module", autouse=True)
def athena_emulation() -> None:
    athena.install()


@pytest.fixture
def lake(aws: None) -> Lake:
    """Customers (two files, the older without `score`), orders by day (projection), events by year
    (registered partitions), an empty table; a `_SUCCESS` marker and a hidden file Athena skips."""
    s3, glue = boto3.client("s3", region_name=REGION), boto3.client("glue", region_name=REGION)
    lake = Lake(s3, glue, boto3.client("athena", region_name=REGION), {})
    s3.create_bucket(Bucket=LAKE_BUCKET)
    s3.create_bucket(Bucket=RESULTS_BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})

    lake.table("customers", CUSTOMER_COLUMNS)
    old = {
        "customer_id": pa.array(["c1", "c2"]),
        "name": pa.array(['Ada "the first" Lovelace', None]),
        "tier": pa.array(["gold", "silver"]),
        "spend": pa.array([Decimal("120.50"), Decimal("0")], pa.decimal128(10, 2)),
        "visits": pa.array([3, 1], pa.int32()),
        "joined": pa.array([date(2024, 1, 15), date(2025, 6, 1)]),
        "updated_at": pa.array([utc(2026, 11, 23, 10, 15, 30), None], pa.timestamp("ms", tz="UTC")),
        "vip": pa.array([True, False]),
    }
    new = {
        "customer_id": pa.array(["c3"]),
        "name": pa.array([""]),
        "tier": pa.array(["gold"]),
        "spend": pa.array([Decimal("80.25")], pa.decimal128(10, 2)),
        "visits": pa.array([2], pa.int32()),
        "joined": pa.array([date(2026, 2, 28)]),
        "updated_at": pa.array([utc(2026, 11, 23, 11, 0, 0, 123000)], pa.timestamp("ms", tz="UTC")),
        "vip": pa.array([None], pa.bool_()),
        "score": pa.array([0.1]),
    }
    lake.put("customers", "customers/part-0.parquet", parquet(old))
    lake.put("customers", "customers/part-1.parquet", parquet(new))
    s3.put_object(Bucket=LAKE_BUCKET, Key="customers/_SUCCESS", Body=b"")
    s3.put_object(Bucket=LAKE_BUCKET, Key="customers/.part-0.parquet.crc", Body=b"not parquet")

    lake.table(
        "orders",
        ORDER_COLUMNS,
        PartitionKeys=[{"Name": "dt", "Type": "string"}],
        Parameters={
            "classification": "parquet",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": "2026-01-01,NOW",
            "storage.location.template": f"s3://{LAKE_BUCKET}/orders/dt=${{dt}}/",
        },
    )
    for day, orders in {
        "2026-11-22": [("o1", "c1", 10.0, utc(2026, 11, 22, 9, 0, 0)), ("o2", "c2", 5.5, utc(2026, 11, 22, 23, 59, 0))],
        "2026-11-23": [("o3", "c1", 20.0, utc(2026, 11, 23, 8, 30, 0)), ("o4", "c3", 2.25, utc(2026, 11, 23, 9, 0, 0))],
    }.items():
        order_id, customer_id, amount, placed_at = zip(*orders, strict=True)
        body = parquet(
            {
                "order_id": pa.array(order_id),
                "customer_id": pa.array(customer_id),
                "amount": pa.array(amount),
                "placed_at": pa.array(placed_at, pa.timestamp("ms", tz="UTC")),
            }
        )
        lake.put("orders", f"orders/dt={day}/orders-1-{day}.parquet", body)

    lake.table(
        "events",
        [("event", "string")],
        PartitionKeys=[{"Name": "year", "Type": "int"}],
        Parameters={"classification": "parquet"},
    )
    lake.put("events", "events/year=2025/a.parquet", parquet({"event": pa.array(["signup", "login"])}))
    lake.put("unregistered", "events/year=2026/a.parquet", parquet({"event": pa.array(["not registered"])}))
    glue.create_partition(
        DatabaseName=DATABASE,
        TableName="events",
        PartitionInput={"Values": ["2025"], "StorageDescriptor": {"Location": f"s3://{LAKE_BUCKET}/events/year=2025/"}},
    )

    lake.table("returns", [("order_id", "string"), ("amount", "double")])
    return lake


# -- running and reading --------------------------------------------------------------------------
def test_a_query_succeeds_at_once_and_its_results_are_paged_as_athena_pages_them(lake: Lake) -> None:
    # When the analysis engine starts a query in the lake's database
    query_id = lake.start("SELECT customer_id, tier, visits FROM customers ORDER BY customer_id")

    # Then it has already run, on the customers' Parquet (not the marker, nor the hidden file)
    execution = lake.execution(query_id)
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert execution["StatementType"] == "DML"
    assert execution["WorkGroup"] == "primary"
    assert execution["QueryExecutionContext"] == {"Database": DATABASE}
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{OUTPUT}{query_id}.csv"
    assert execution["Statistics"]["DataScannedInBytes"] == lake.sizes["customers"]
    assert execution["Statistics"]["EngineExecutionTimeInMillis"] >= 0
    assert execution["EngineVersion"]["EffectiveEngineVersion"] == "Athena engine version 3"

    # And the header is the first row of the first page, then pages of MaxResults rows
    first = lake.athena.get_query_results(QueryExecutionId=query_id, MaxResults=2)
    assert [[d["VarCharValue"] for d in row["Data"]] for row in first["ResultSet"]["Rows"]] == [
        ["customer_id", "tier", "visits"],
        ["c1", "gold", "3"],
    ]
    columns = first["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"], c["Precision"], c["CaseSensitive"]) for c in columns] == [
        ("customer_id", "varchar", 2147483647, True),
        ("tier", "varchar", 2147483647, True),
        ("visits", "integer", 10, False),
    ]
    second = lake.athena.get_query_results(QueryExecutionId=query_id, MaxResults=2, NextToken=first["NextToken"])
    assert [[d["VarCharValue"] for d in row["Data"]] for row in second["ResultSet"]["Rows"]] == [
        ["c2", "silver", "1"],
        ["c3", "gold", "2"],
    ]
    assert "NextToken" not in second
    # And boto3's paginator walks the same pages
    pages = lake.athena.get_paginator("get_query_results").paginate(
        QueryExecutionId=query_id, PaginationConfig={"PageSize": 1}
    )
    assert sum(len(page["ResultSet"]["Rows"]) for page in pages) == 4


def test_the_result_object_is_athenas_csv(lake: Lake) -> None:
    query_id = lake.start(
        "SELECT customer_id, name, spend, joined, updated_at, vip, score, CAST(visits AS DOUBLE) / 2 AS half "
        "FROM customers ORDER BY customer_id"
    )

    # Every value quoted (quotes doubled), NULL as an empty unquoted field, Athena's value text
    assert lake.csv(query_id) == (
        b'"customer_id","name","spend","joined","updated_at","vip","score","half"\n'
        b'"c1","Ada ""the first"" Lovelace","120.50","2024-01-15","2026-11-23 10:15:30.000","true",,"1.5"\n'
        b'"c2",,"0.00","2025-06-01",,"false",,"0.5"\n'
        b'"c3","","80.25","2026-02-28","2026-11-23 11:00:00.123",,"0.1","1.0"\n'
    )
    # And GetQueryResults gives the same text, NULL without VarCharValue
    result = lake.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
    assert result["Rows"][2]["Data"][1] == {}
    assert result["Rows"][3]["Data"][1] == {"VarCharValue": ""}
    types = [column["Type"] for column in result["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "varchar", "decimal", "date", "timestamp", "boolean", "double", "double"]


def test_partition_columns_come_from_the_path_typed_as_glue_declares_them(lake: Lake) -> None:
    # Projection: every day under the location template is read, `dt` is a string
    assert lake.rows("SELECT dt, count(*) AS orders, sum(amount) AS amount FROM orders GROUP BY dt ORDER BY dt") == [
        ["dt", "orders", "amount"],
        ["2026-11-22", "2", "15.5"],
        ["2026-11-23", "2", "22.25"],
    ]
    query_id = lake.start("SELECT year, event FROM events ORDER BY event")
    result = lake.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
    # Registered partitions only (as Athena without projection), `year` an integer
    assert [[d["VarCharValue"] for d in row["Data"]] for row in result["Rows"]] == [
        ["year", "event"],
        ["2025", "login"],
        ["2025", "signup"],
    ]
    assert result["ResultSetMetadata"]["ColumnInfo"][0]["Type"] == "integer"
    assert lake.execution(query_id)["Statistics"]["DataScannedInBytes"] == lake.sizes["events"]
    # A filter on the partition key
    assert lake.rows("SELECT order_id FROM orders WHERE dt = '2026-11-23' ORDER BY order_id") == [
        ["order_id"],
        ["o3"],
        ["o4"],
    ]


def test_a_table_without_objects_is_an_empty_relation_with_its_columns(lake: Lake) -> None:
    assert lake.rows("SELECT count(*) AS n, sum(amount) AS total FROM returns") == [["n", "total"], ["0", None]]
    query_id = lake.start("SELECT * FROM returns")
    result = lake.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
    assert [[d["VarCharValue"] for d in row["Data"]] for row in result["Rows"]] == [["order_id", "amount"]]
    assert [c["Type"] for c in result["ResultSetMetadata"]["ColumnInfo"]] == ["varchar", "double"]
    assert lake.csv(query_id) == b'"order_id","amount"\n'


def test_a_join_with_aggregates_over_quoted_and_qualified_names(lake: Lake) -> None:
    sql = """
        WITH spend AS (
            SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS total, max(o.placed_at) AS last_order
            FROM "ecrm_lake"."orders" AS o
            GROUP BY o.customer_id
        )
        SELECT c.customer_id, c.tier, s.orders, s.total, s.last_order,
               rank() OVER (ORDER BY s.total DESC) AS place, round(s.total / s.orders, 2)
        FROM awsdatacatalog.ecrm_lake.customers AS c
        JOIN spend AS s ON s.customer_id = c.customer_id
        WHERE c.tier IN ('gold', 'silver')
        ORDER BY place
    """
    # Quoted and three-part names resolve without a context database
    assert lake.rows(sql, QueryExecutionContext={}) == [
        ["customer_id", "tier", "orders", "total", "last_order", "place", "_col6"],
        ["c1", "gold", "2", "30.0", "2026-11-23 08:30:00.000", "1", "15.0"],
        ["c2", "silver", "1", "5.5", "2026-11-22 23:59:00.000", "2", "5.5"],
        ["c3", "gold", "1", "2.25", "2026-11-23 09:00:00.000", "3", "2.25"],
    ]
    assert lake.rows(
        "SELECT tier, count(DISTINCT customer_id), avg(visits), min(joined), bool_or(vip), approx_distinct(name), "
        "every(vip) FROM customers GROUP BY tier ORDER BY tier"
    ) == [
        ["tier", "_col1", "_col2", "_col3", "_col4", "_col5", "_col6"],
        ["gold", "2", "2.5", "2024-01-15", "true", "2", "true"],
        ["silver", "1", "1.0", "2025-06-01", "false", "0", "false"],
    ]


def test_trino_functions_duckdb_lacks_run_the_same(lake: Lake) -> None:
    assert lake.rows(
        "SELECT day_of_week(DATE '2026-11-22'), day_of_year(DATE '2026-02-01'), "
        'json_extract_scalar(\'{"a":{"b":"x"}}\', \'$.a.b\'), json_extract_scalar(\'{"a":{"b":1}}\', \'$.a\'), '
        "regexp_like('gold', '^go'), date_trunc('month', TIMESTAMP '2026-11-23 10:15:30'), "
        "CAST(TIMESTAMP '2026-11-23 10:15:30' + INTERVAL '1' DAY AS DATE), TRY_CAST('x' AS INTEGER), 'a' || 'b'"
    ) == [
        [f"_col{i}" for i in range(9)],
        ["7", "32", "x", None, "true", "2026-11-01 00:00:00.000", "2026-11-24", None, "ab"],
    ]


# -- parameters -----------------------------------------------------------------------------------
def test_execution_parameters_are_sql_literals_bound_in_order(lake: Lake) -> None:
    sql = "SELECT customer_id FROM customers WHERE tier = ? AND visits >= ? AND joined < ? -- a '?' in a comment"
    parameters = ["'gold'", "2", "DATE '2026-01-01'"]

    assert lake.rows(sql, ExecutionParameters=parameters) == [["customer_id"], ["c1"]]
    query_id = lake.start(sql, ExecutionParameters=parameters)
    assert lake.execution(query_id)["ExecutionParameters"] == parameters
    # A quote inside a string literal is doubled, as in SQL
    assert lake.rows("SELECT ? AS said", ExecutionParameters=["'it''s ?'"]) == [["said"], ["it's ?"]]


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        (["'gold'"], "Incorrect number of parameters: expected 2 but found 1"),
        (["'gold'", "1) OR (1 = 1"], "is not a single SQL value"),
        (["'gold'", "visits"], "visits"),
        (["gold", "1"], "gold"),
    ],
)
def test_parameters_that_are_not_one_value_each_fail_the_query(lake: Lake, parameters: list[str], reason: str) -> None:
    sql = "SELECT customer_id FROM customers WHERE tier = ? AND visits >= ?"

    query_id = lake.start(sql, ExecutionParameters=parameters)

    status = lake.execution(query_id)["Status"]
    assert status["State"] == "FAILED"
    assert reason in status["StateChangeReason"]


# -- failures -------------------------------------------------------------------------------------
def test_an_unknown_column_fails_the_query_with_the_engines_reason(lake: Lake) -> None:
    query_id = lake.start("SELECT customer_id, lifetime_value FROM customers")

    status = lake.execution(query_id)["Status"]
    assert status["State"] == "FAILED"
    assert "lifetime_value" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2
    assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"]
    with pytest.raises(ClientError) as raised:
        lake.athena.get_query_results(QueryExecutionId=query_id)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("sql", "context", "reason"),
    [
        ("SELECT * FROM no_such_table", {"Database": DATABASE}, "no_such_table"),
        ("SELECT * FROM customers", {}, "customers"),  # the default database has no such table
        ("SELECT * FROM read_csv('/etc/passwd')", {}, "disabled"),  # no local file is reachable
    ],
)
def test_tables_outside_the_catalog_fail_the_query(lake: Lake, sql: str, context: dict[str, str], reason: str) -> None:
    query_id = lake.start(sql, QueryExecutionContext=context)

    status = lake.execution(query_id)["Status"]
    assert status["State"] == "FAILED"
    assert reason in status["StateChangeReason"]


def test_a_syntax_error_is_refused_when_the_query_is_started(lake: Lake) -> None:
    with pytest.raises(ClientError) as raised:
        lake.start("SELECT customer_id FORM customers")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "syntax error" in raised.value.response["Error"]["Message"]


def test_a_query_needs_an_output_location(lake: Lake) -> None:
    with pytest.raises(ClientError) as raised:
        lake.start("SELECT 1", ResultConfiguration={})
    assert "No output location provided" in raised.value.response["Error"]["Message"]


def test_an_enforcing_work_group_writes_where_it_says(lake: Lake) -> None:
    # Given a work group that enforces its result location
    lake.athena.create_work_group(
        Name="analysis",
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{RESULTS_BUCKET}/enforced/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )

    # When a query asks for another location
    query_id = lake.start("SELECT 1 AS one", WorkGroup="analysis")

    # Then the work group's location wins
    execution = lake.execution(query_id)
    assert execution["WorkGroup"] == "analysis"
    assert execution["ResultConfiguration"]["OutputLocation"] == f"s3://{RESULTS_BUCKET}/enforced/{query_id}.csv"
    body = lake.s3.get_object(Bucket=RESULTS_BUCKET, Key=f"enforced/{query_id}.csv")["Body"].read()
    assert body == b'"one"\n"1"\n'


def test_a_query_runs_apart_from_the_request_that_started_it(lake: Lake) -> None:
    # Given the engine busy with another query (it runs one at a time)
    with athena._QUERY_LOCK:
        # When a query is started
        query_id = lake.start_only("SELECT 1 AS one")

        # Then Athena answered at once: the query is RUNNING and has no result yet
        assert lake.execution(query_id)["Status"]["State"] == "RUNNING"
        with pytest.raises(ClientError, match=r"Query has not yet finished\. Current state: RUNNING"):
            lake.athena.get_query_results(QueryExecutionId=query_id)

    # And it succeeds once the engine is free
    assert finished(lake.athena, query_id) == "SUCCEEDED"
    rows = lake.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    assert [[d.get("VarCharValue") for d in row["Data"]] for row in rows] == [["one"], ["1"]]


def test_a_stopped_query_stays_cancelled_and_writes_no_result(lake: Lake) -> None:
    # Given a query waiting for the engine
    with athena._QUERY_LOCK:
        query_id = lake.start_only("SELECT 2 AS two")
        # When it is stopped
        lake.athena.stop_query_execution(QueryExecutionId=query_id)

    # Then it ends CANCELLED, with no result to read and no result object
    assert finished(lake.athena, query_id) == "CANCELLED"
    with pytest.raises(ClientError, match="Final query state: CANCELLED"):
        lake.athena.get_query_results(QueryExecutionId=query_id)
    key = OUTPUT.removeprefix(f"s3://{RESULTS_BUCKET}/") + f"{query_id}.csv"
    with pytest.raises(ClientError):
        lake.s3.head_object(Bucket=RESULTS_BUCKET, Key=key)


def test_ddl_keeps_motos_behaviour(lake: Lake) -> None:
    query_id = lake.start("CREATE DATABASE IF NOT EXISTS scratch")

    assert lake.execution(query_id)["Status"]["State"] == "SUCCEEDED"
    assert lake.execution(query_id)["StatementType"] == "DDL"
    assert (
        lake.athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="scratch")["Database"]["Name"] == "scratch"
    )


# -- provisioning ---------------------------------------------------------------------------------
def test_a_work_group_is_provisioned_from_the_template(aws: None, tmp_path: Path) -> None:
    assert "AWS::Athena::WorkGroup" in EMULATED
    template_path = tmp_path / "Stack.template.json"
    template_path.write_text(
        json.dumps(
            {
                "Resources": {
                    "Results": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": RESULTS_BUCKET}},
                    "Analysis": {
                        "Type": "AWS::Athena::WorkGroup",
                        "Properties": {
                            "Name": "ecrm-analysis",
                            "Description": "the analysis engine's queries",
                            "RecursiveDeleteOption": True,
                            "WorkGroupConfiguration": {
                                "EnforceWorkGroupConfiguration": "true",
                                "PublishCloudWatchMetricsEnabled": True,
                                "BytesScannedCutoffPerQuery": "1073741824",
                                "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                                "ResultConfiguration": {
                                    "OutputLocation": {"Fn::Sub": "s3://${Results}/athena/"},
                                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                                },
                            },
                            "Tags": [{"Key": "engine", "Value": "analysis"}],
                        },
                    },
                }
            }
        )
    )
    template = Template.load(template_path, "Stack")

    provisioned = Provisioner(
        template,
        lambda service: boto3.client(service, region_name=REGION),
        FunctionRuntime("http://127.0.0.1:9", REGION, tmp_path),
    ).run()

    assert provisioned.physical["Analysis"] == "ecrm-analysis"
    client = boto3.client("athena", region_name=REGION)
    work_group = client.get_work_group(WorkGroup="ecrm-analysis")["WorkGroup"]
    assert work_group["Description"] == "the analysis engine's queries"
    configuration = work_group["Configuration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == 1073741824
    assert configuration["ResultConfiguration"] == {
        "OutputLocation": f"s3://{RESULTS_BUCKET}/athena/",
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }
    # And a query in it lands in the work group's location
    query_id = client.start_query_execution(QueryString="SELECT 42 AS answer", WorkGroup="ecrm-analysis")[
        "QueryExecutionId"
    ]
    assert finished(client, query_id) == "SUCCEEDED"
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=RESULTS_BUCKET, Key=f"athena/{query_id}.csv")
    assert body["Body"].read() == b'"answer"\n"42"\n'


# -- the pieces -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.5, "2.5"),
        (3.0, "3.0"),
        (-0.0, "-0.0"),
        (1234567.0, "1234567.0"),
        (12345678.0, "1.2345678E7"),
        (1e20, "1.0E20"),
        (0.001, "0.001"),
        (0.00015, "1.5E-4"),
        (-2.5e-10, "-2.5E-10"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_doubles_are_printed_as_java_prints_them(value: float, text: str) -> None:
    assert athena.java_double(value) == text


def test_values_are_written_as_athena_writes_them() -> None:
    assert athena.java_float(0.10000000149011612) == "0.1"
    assert athena.athena_text(Decimal("1.50")) == "1.50"
    assert athena.athena_text(datetime(2026, 1, 2, 3, 4, 5, 678901)) == "2026-01-02 03:04:05.678"
    assert athena.athena_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05.000 UTC"
    assert athena.athena_text([1, None, "a"]) == "[1, null, a]"
    assert athena.athena_text({"x": 1, "y": "b"}) == "{x=1, y=b}"
    assert athena.athena_text([("k", 1)]) == "{k=1}"
    assert athena.athena_text(b"hi") == "68 69"
    assert athena.athena_csv(["a", "b"], [['say "hi"', None], ["", "x"]]) == b'"a","b"\n"say ""hi""",\n"","x"\n'


def test_queries_are_told_from_other_statements() -> None:
    assert athena.is_query("  -- the segment\n/* rule */ (SELECT 1)")
    assert athena.is_query("with a as (select 1) select * from a")
    assert not athena.is_query("CREATE EXTERNAL TABLE t (a int)")
    assert not athena.is_query("MSCK REPAIR TABLE t")
    assert athena.bind_parameters("SELECT '?', \"?\", ? /* ? */", ["'x'"]) == "SELECT '?', \"?\", ('x') /* ? */"


def test_unnamed_columns_are_numbered_and_names_lower_cased(lake: Lake) -> None:
    sql = 'SELECT customer_id AS "Customer", c.TIER, upper(tier), * FROM customers c WHERE visits = 1'
    assert lake.rows(sql)[0] == ["customer", "tier", "_col2", *[name for name, _ in CUSTOMER_COLUMNS]]
    assert lake.rows("VALUES (1, 'a')", QueryExecutionContext={}) == [["_col0", "_col1"], ["1", "a"]]
