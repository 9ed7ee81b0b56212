"""The lake on the local cloud: Firehose writes Parquet by day, the local Athena's DuckDB reads it.

A moto server on 127.0.0.1 (as the local cloud runs it, with `infra.local.firehose` installed)
and the template the `Lake` construct synthesizes with one `collected_events` table: bucket,
Glue database and table, delivery stream, role and log group, provisioned like the local cloud
does it. Records go in through boto3's Firehose client, as a producer Lambda would put them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ecrm.collect.lake_records import collected_event_record
from ecrm.collect.models import CollectedEvent
from ecrm.core.lake import COLLECTED_EVENT_COLUMNS, COLLECTED_EVENTS, firehose_data

from infra.local import athena, firehose
from infra.local.cloud import free_port
from infra.local.lake import LocalLake
from infra.local.provision import Provisioned, Provisioner
from infra.local.runtime import FunctionRuntime
from infra.local.template import REGION, Template
from tests.integration.test_local_athena import finished

PREFIX = "lakeit"  # the deployment prefix of the synthesized template, made unique per test
OBJECT_NAME = re.compile(r"^(?P<stream>.+)-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}$")


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    firehose.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def lake_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The template of a stack holding a `Lake` with the collected_events table (synthesized once)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from infra.app import cdk_json_context
    from infra.constructs.lake import Lake
    from infra.settings import DeploymentSettings

    outdir = tmp_path_factory.mktemp("lake.out")
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    stack = cdk.Stack(app, "LakeIt")
    lake = Lake(stack, "Lake", settings=DeploymentSettings(prefix=PREFIX))
    lake.add_table(
        "CollectedEvents", table=COLLECTED_EVENTS, columns=COLLECTED_EVENT_COLUMNS, description="Collected events"
    )
    app.synth()
    return (outdir / "LakeIt.template.json").read_text()


@dataclass
class LocalLakeCloud:
    endpoint: str
    provisioned: Provisioned

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def physical(self, resource_type: str, logical_prefix: str = "") -> str:
        (found,) = [
            str(self.provisioned.physical[k])
            for k, t in self.provisioned.types.items()
            if t == resource_type and k.startswith(logical_prefix)
        ]
        return found

    @property
    def stream(self) -> str:
        return self.physical("AWS::KinesisFirehose::DeliveryStream")

    @property
    def bucket(self) -> str:
        return self.physical("AWS::S3::Bucket", "LakeBucket")

    @property
    def database(self) -> str:
        return self.physical("AWS::Glue::Database")

    def keys(self, prefix: str) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@pytest.fixture
def lake(moto_endpoint: str, lake_template: str, tmp_path: Path) -> LocalLakeCloud:
    # A stack and a deployment prefix of their own: moto's state is per process, names are global in it.
    unique = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    path = tmp_path / "template.json"
    path.write_text(lake_template.replace(PREFIX, unique))
    template = Template.load(path, f"LakeIt{unique}")
    cloud = LocalLakeCloud(moto_endpoint, Provisioned())
    runtime = FunctionRuntime(moto_endpoint, REGION, tmp_path)
    cloud.provisioned = Provisioner(template, cloud.client, runtime).run()
    return cloud


def collected(index: int, kind: str, **fields: Any) -> CollectedEvent:
    at = datetime(2026, 11, 23, 10, 15, 30, 123456, tzinfo=UTC) + timedelta(seconds=index)
    values: dict[str, Any] = {
        "message_id": f"msg-{index}",
        "type": kind,
        "source_id": "src-web",
        "source_name": "web",
        "anonymous_id": f"anon-{index}",
        "event": "Product Viewed" if kind == "track" else None,
        "properties": {"sku": f"SKU-{index}", "price": 12.5},
        "context": {"locale": "en-GB"},
        "timestamp": at,
        "original_timestamp": at,
        "sent_at": at + timedelta(milliseconds=5),
        "received_at": at + timedelta(milliseconds=40),
    }
    return CollectedEvent(**{**values, **fields})


def put(lake: LocalLakeCloud, *payloads: bytes) -> dict[str, Any]:
    response: dict[str, Any] = lake.client("firehose").put_record_batch(
        DeliveryStreamName=lake.stream, Records=[{"Data": p} for p in payloads]
    )
    return response


def today_range() -> set[str]:
    """The UTC day now (and the one before, should a test run across midnight)."""
    now = datetime.now(UTC)
    return {now.strftime("%Y-%m-%d"), (now - timedelta(minutes=1)).strftime("%Y-%m-%d")}


# -- the records ----------------------------------------------------------------------------------
def test_a_collected_event_becomes_a_flat_json_record() -> None:
    event = collected(1, "track", user_id="user-1", traits={"plan": "gold", "tags": ["a", "b"]})

    record = collected_event_record(event)

    assert list(record) == [name for name, _ in COLLECTED_EVENT_COLUMNS]
    assert record["properties"] == '{"sku":"SKU-1","price":12.5}'
    assert record["traits"] == '["plan","tags"]'  # names only: values are the customer store's
    assert record["timestamp"] == "2026-11-23T10:15:31.123Z"
    assert record["received_at"] == "2026-11-23T10:15:31.163Z"
    assert record["name"] is None
    assert json.loads(firehose_data(record)) == record
    assert firehose_data(record).endswith(b"}\n")


def test_no_personal_value_of_a_call_reaches_the_lake() -> None:
    # Given an identify call with contact traits and a browser's full context
    event = collected(
        1,
        "identify",
        anonymous_id="anon-1",
        traits={"email": "ada@example.com", "phone": "+14155552671", "first_name": "Ada"},
        context={
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "traits": {"email": "ada@example.com"},
            "location": {"city": "London", "latitude": 51.5},
            "device": {"id": "dev-1", "advertisingId": "ad-1", "type": "ios", "model": "iPhone16,1"},
            "page": {"url": "https://shop.example/welcome?email=ada%40example.com#x", "path": "/welcome"},
            "library": {"name": "analytics.js", "version": "5.0"},
            "locale": "en-GB",
        },
    )
    # When it becomes a lake record
    record = firehose_data(collected_event_record(event)).decode()
    # Then none of the person's values are in it, and what analysis reads is
    for personal in (
        "ada@example.com",
        "ada%40example.com",
        "+14155552671",
        "Ada",
        "203.0.113.9",
        "Mozilla",
        "London",
        "dev-1",
        "ad-1",
    ):
        assert personal not in record, personal
    context = json.loads(json.loads(record)["context"])
    assert context == {
        "device": {"type": "ios", "model": "iPhone16,1"},
        "library": {"name": "analytics.js", "version": "5.0"},
        "locale": "en-GB",
        "page": {"path": "/welcome", "url": "https://shop.example/welcome"},
    }
    assert json.loads(json.loads(record)["traits"]) == ["email", "first_name", "phone"]


def test_naive_and_offset_timestamps_are_written_in_utc() -> None:
    naive = collected(0, "page", timestamp=datetime(2026, 1, 2, 3, 4, 5), original_timestamp=None, sent_at=None)
    offset = collected(0, "page", timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).astimezone())

    assert collected_event_record(naive)["timestamp"] == "2026-01-02T03:04:05.000Z"
    assert collected_event_record(naive)["original_timestamp"] is None
    assert collected_event_record(offset)["timestamp"] == "2026-01-02T03:04:05.000Z"


# -- the local cloud ------------------------------------------------------------------------------
def test_the_catalog_and_the_stream_come_from_the_template(lake: LocalLakeCloud) -> None:
    table = lake.client("glue").get_table(DatabaseName=lake.database, Name=COLLECTED_EVENTS)["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == COLLECTED_EVENT_COLUMNS
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert table["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/{COLLECTED_EVENTS}/"
    assert table["Parameters"]["projection.dt.format"] == "yyyy-MM-dd"

    described = lake.client("firehose").describe_delivery_stream(DeliveryStreamName=lake.stream)
    (destination,) = described["DeliveryStreamDescription"]["Destinations"]
    config = destination["ExtendedS3DestinationDescription"]
    assert config["BucketARN"] == f"arn:aws:s3:::{lake.bucket}"
    assert config["Prefix"] == "collected_events/dt=!{timestamp:yyyy-MM-dd}/"
    schema = config["DataFormatConversionConfiguration"]["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == (lake.database, COLLECTED_EVENTS)


def test_records_land_as_parquet_under_the_day_and_are_queried_with_sql(lake: LocalLakeCloud) -> None:
    events = [collected(0, "track"), collected(1, "track"), collected(2, "track")]
    events += [collected(3, "identify", user_id="user-3", traits={"email": "ada@example.com"}), collected(4, "page")]

    # When a producer puts the records in one batch
    response = put(lake, *(firehose_data(collected_event_record(e)) for e in events))

    # Then Firehose accepted them all, encrypted at rest
    assert response["FailedPutCount"] == 0
    assert response["Encrypted"] is True
    assert len(response["RequestResponses"]) == 5
    # And one Parquet object is under today's partition, named as Firehose names it
    (key,) = lake.keys(f"{COLLECTED_EVENTS}/")
    folder, name = key.rsplit("/", 1)
    assert folder.removeprefix(f"{COLLECTED_EVENTS}/dt=") in today_range()
    match = OBJECT_NAME.match(name.removesuffix(".parquet"))
    assert name.endswith(".parquet")
    assert match is not None
    assert match["stream"] == lake.stream
    # With the Glue table's columns, timestamps to the millisecond in UTC
    table = pq.read_table(io.BytesIO(lake.read(key)))
    assert table.schema.names == [name for name, _ in COLLECTED_EVENT_COLUMNS]
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("properties").type == pa.string()
    assert table.num_rows == 5
    # And nothing went to the error output
    assert lake.keys("errors/") == []

    # And the lake's SQL counts them by type
    local = LocalLake(lake.client("s3"), lake.bucket)
    counts = local.query("select type, count(*) n from {collected_events} group by type order by type")
    assert counts == [{"type": "identify", "n": 1}, {"type": "page", "n": 1}, {"type": "track", "n": 3}]
    (row,) = local.query(
        "select dt, timestamp, user_id, json_extract_string(traits, '$[0]') first_trait"
        " from {collected_events} where message_id = ?",
        ["msg-3"],
    )
    assert row["dt"] in today_range()
    assert row["timestamp"] == datetime(2026, 11, 23, 10, 15, 33, 123000, tzinfo=UTC)
    assert (row["user_id"], row["first_trait"]) == ("user-3", "email")  # the trait's name, never its value


def test_each_put_is_delivered_at_once_as_its_own_object(lake: LocalLakeCloud) -> None:
    client = lake.client("firehose")

    # When two records are put one by one
    for index in range(2):
        record = collected_event_record(collected(index, "screen", name="Home"))
        answer = client.put_record(DeliveryStreamName=lake.stream, Record={"Data": firehose_data(record)})
        assert answer["Encrypted"] is True

    # Then each is already an object, and both are read back
    assert len(lake.keys(f"{COLLECTED_EVENTS}/")) == 2
    local = LocalLake(lake.client("s3"), lake.bucket)
    assert local.query("select name, count(*) n from {collected_events} group by name") == [{"name": "Home", "n": 2}]


def test_a_record_that_does_not_fit_the_schema_goes_to_the_error_output(lake: LocalLakeCloud) -> None:
    good = firehose_data(collected_event_record(collected(0, "track")))
    bad_time = firehose_data({**collected_event_record(collected(1, "track")), "timestamp": "yesterday"})
    not_json = b"message_id=2;type=track"

    # When a batch mixes good and bad records
    response = put(lake, good, bad_time, not_json)

    # Then Firehose accepted all of them (conversion happens after the put)
    assert response["FailedPutCount"] == 0
    # And the good one is in the table, the others under the error prefix, as Firehose's error documents
    local = LocalLake(lake.client("s3"), lake.bucket)
    assert local.query("select message_id from {collected_events}") == [{"message_id": "msg-0"}]
    (key,) = lake.keys(f"errors/{COLLECTED_EVENTS}/")
    assert key.split("/")[2] == "format-conversion-failed"
    assert key.split("/")[3].removeprefix("dt=") in today_range()
    documents = [json.loads(line) for line in lake.read(key).decode().splitlines()]
    assert [base64.b64decode(d["rawData"]) for d in documents] == [bad_time, not_json]
    assert {d["lastErrorCode"] for d in documents} == {"DataFormatConversion.MalformedData"}
    assert "timestamp" in documents[0]["lastErrorMessage"]
    assert documents[0]["dataCatalogTable"]["databaseName"] == lake.database
    assert documents[0]["dataCatalogTable"]["tableName"] == COLLECTED_EVENTS


def test_the_openx_json_serde_rules_apply(lake: LocalLakeCloud) -> None:
    # Two JSON documents in one record, mixed-case keys, an unknown key, a missing column, epoch millis,
    # and a JSON object in a string column (kept as its JSON text)
    record = (
        b'{"Message_Id": "a", "TYPE": "track", "unknown": 1, "received_at": 1795428930123, "properties": {"x": 1}}'
        b'{"message_id": "b", "type": "page", "timestamp": "2026-11-23 10:15:30.5"}'
    )

    put(lake, record)

    local = LocalLake(lake.client("s3"), lake.bucket)
    rows = local.query("select message_id, type, received_at, timestamp, properties, user_id from {collected_events}")
    assert sorted(rows, key=lambda r: r["message_id"]) == [
        {
            "message_id": "a",
            "type": "track",
            "received_at": datetime(2026, 11, 23, 10, 15, 30, 123000, tzinfo=UTC),
            "timestamp": None,
            "properties": '{"x":1}',
            "user_id": None,
        },
        {
            "message_id": "b",
            "type": "page",
            "received_at": None,
            "timestamp": datetime(2026, 11, 23, 10, 15, 30, 500000, tzinfo=UTC),
            "properties": None,
            "user_id": None,
        },
    ]


def test_an_empty_table_answers_no_rows(lake: LocalLakeCloud) -> None:
    local = LocalLake(lake.client("s3"), lake.bucket)

    assert local.query("select type, count(*) n from {collected_events} group by type") == []
    assert local.query("select count(*) n from {collected_events}") == [{"n": 0}]
    with pytest.raises(LookupError, match="not_a_table"):
        local.query("select * from {not_a_table}")


def test_the_local_lake_and_the_local_athena_are_one_engine(lake: LocalLakeCloud) -> None:
    athena.install()
    put(
        lake,
        *(
            firehose_data(collected_event_record(collected(i, kind)))
            for i, kind in enumerate(["track", "track", "page"])
        ),
    )
    sql = (
        "select dt, type, count(*) n, max(timestamp) latest from {collected_events}"
        " where timestamp >= ? group by dt, type order by type"
    )
    since = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)

    # When the lake's SQL runs through LocalLake (a Python value bound) and through Athena's API (a literal)
    local = LocalLake(lake.client("s3"), lake.bucket).query(sql, [since])
    client = lake.client("athena")
    execution = client.start_query_execution(
        QueryString=sql.replace("{collected_events}", COLLECTED_EVENTS),
        QueryExecutionContext={"Database": lake.database},
        ResultConfiguration={"OutputLocation": f"s3://{lake.bucket}/query-results/"},
        ExecutionParameters=["TIMESTAMP '2026-11-23 10:15:31'"],
    )["QueryExecutionId"]
    assert finished(client, execution) == "SUCCEEDED"
    header, *answered = client.get_query_results(QueryExecutionId=execution)["ResultSet"]["Rows"]

    # Then both read the same partition, rows and types; LocalLake's timestamps are aware, in UTC
    assert [c["VarCharValue"] for c in header["Data"]] == ["dt", "type", "n", "latest"]
    assert [[c.get("VarCharValue") for c in row["Data"]] for row in answered] == [
        [r["dt"], r["type"], str(r["n"]), r["latest"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]] for r in local
    ]
    assert [(r["type"], r["n"]) for r in local] == [("page", 1), ("track", 1)]
    assert local[0]["latest"] == datetime(2026, 11, 23, 10, 15, 32, 123000, tzinfo=UTC)
    assert local[0]["dt"] in today_range()


# -- prefixes and timestamps ----------------------------------------------------------------------
def test_prefix_namespaces_are_evaluated_as_firehose_does() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

    assert firehose.render_prefix("t/dt=!{timestamp:yyyy-MM-dd}/", at) == "t/dt=2026-03-04/"
    assert firehose.render_prefix("raw/", at) == "raw/2026/03/04/05/"
    assert (
        firehose.render_prefix(
            "errors/t/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/'h'HH}/",
            at,
            error_output_type="format-conversion-failed",
        )
        == "errors/t/format-conversion-failed/2026/03/04/h05/"
    )
    assert re.fullmatch(
        r"x/[a-z0-9]{11}/2026/", firehose.render_prefix("x/!{firehose:random-string}/!{timestamp:yyyy}/", at)
    )
    with pytest.raises(NotImplementedError, match="partitionKeyFromQuery"):
        firehose.render_prefix("!{partitionKeyFromQuery:customer}/!{timestamp:yyyy}/", at)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T10:15:30.123Z", datetime(2026, 11, 23, 10, 15, 30, 123000, tzinfo=UTC)),
        ("2026-11-23T10:15:30.123456789Z", datetime(2026, 11, 23, 10, 15, 30, 123000, tzinfo=UTC)),
        ("2026-11-23 10:15:30", datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)),
        (1795428930, datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)),
        (1795428930123, datetime(2026, 11, 23, 10, 15, 30, 123000, tzinfo=UTC)),
        (1795428930.5, datetime(2026, 11, 23, 10, 15, 30, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_are_read_in_the_forms_of_the_openx_serde(value: Any, expected: datetime) -> None:
    assert firehose.parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["2026-11-23T10:15:30+02:00", "23/11/2026", "yesterday", True])
def test_other_timestamps_do_not_fit(value: Any) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        firehose.parse_timestamp(value)
