"""The analysis engine on moto: its table (with `gsi1`), the lake on moto's Athena, and in-memory collaborators.

The table is shaped as `infra/engines/analysis.py` declares it (`EngineTable(..., global_indexes=("gsi1",))`:
string `pk`/`sk`, index `gsi1` on `gsi1_pk`/`gsi1_sk`). The lake is shaped as `infra/constructs/lake.py`
declares its tables (Parquet under `<table>/dt=yyyy-MM-dd/`, partition projection on `dt`), with the
columns of `segment_sql.lake_table_columns()`; `infra.local.athena` makes moto's Athena run the SQL on
DuckDB. The lake streams are recording sinks: `LakeStreams.deliver()` writes what they received as
Parquet, which is what Firehose does after its buffering interval.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService, SegmentCatalogue
from ecrm.analysis.models import Segment
from ecrm.analysis.rule_text import describe
from ecrm.analysis.rules import DEFAULT_CATALOG, Rule, dependencies
from ecrm.analysis.segment_sql import BEHAVIOUR_EVENTS, SEGMENT_PROFILES, lake_table_columns
from ecrm.analysis.segments import RULE, SegmentService
from ecrm.analysis.store import AnalysisStore
from ecrm.core.clock import FixedClock
from ecrm.core.ids import new_id
from ecrm.core.lake import ORDER_LINE_COLUMNS, ORDER_LINES, AthenaLake
from ecrm.customers.models import CustomerCreated, CustomerUpdated, InteractionRecorded, ProfileSnapshot

from infra.local import athena

REGION = "us-east-1"
TABLE = "ecrm-analysis"
LAKE_BUCKET = "ecrm-lake"
DATABASE = "ecrm_lake"
WORKGROUP = "ecrm-analysis"
QUERY_RESULTS = f"s3://{LAKE_BUCKET}/query-results/"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# What `infra/constructs/lake.py` declares for every lake table.
PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}
_ARROW = {
    "string": pa.string(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
}

# The tables the emulated lake declares: segmentation's own and the transactions engine's `order_lines`.
LAKE_TABLE_COLUMNS = {**lake_table_columns(), ORDER_LINES: ORDER_LINE_COLUMNS}


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Sequence[Any], *, correlation_id: str | None = None) -> None:
        self.events.extend(events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.events if e.detail_type == detail_type]

    def moves(self) -> list[tuple[str, str, str]]:
        """(detail type, segment id, customer id) of every membership event, in order."""
        return [
            (e.detail_type, e.segment_id, e.customer_id)
            for e in self.events
            if e.detail_type in {"SegmentEntered", "SegmentExited"}
        ]

    def clear(self) -> None:
        self.events.clear()


@dataclass
class RecordingLakeSink:
    """A lake stream (`FirehoseLakeWriter`) that keeps the rows; `refuse` makes it return them as failed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False

    def write(self, events: Sequence[Mapping[str, Any]]) -> list[Any]:
        if self.refuse:
            return list(events)
        self.rows.extend(dict(e) for e in events)
        return []


@dataclass
class LakeStreams:
    """The two Firehose streams segmentation writes, delivering to the lake bucket on demand."""

    profiles: RecordingLakeSink = field(default_factory=RecordingLakeSink)
    behaviour: RecordingLakeSink = field(default_factory=RecordingLakeSink)
    s3: Any = None
    _delivered: dict[str, int] = field(default_factory=dict)
    _objects: itertools.count = field(default_factory=itertools.count)

    def deliver(self, day: str = "2026-11-23") -> None:
        """Write every row received since the last delivery as one Parquet object per table, as Firehose does."""
        for table, sink in ((SEGMENT_PROFILES, self.profiles), (BEHAVIOUR_EVENTS, self.behaviour)):
            rows = sink.rows[self._delivered.get(table, 0) :]
            self._delivered[table] = len(sink.rows)
            if rows:
                put_parquet(self.s3, table, rows, day=day, name=f"stream-{next(self._objects)}")


def put_parquet(s3: Any, table: str, rows: Sequence[Mapping[str, Any]], *, day: str, name: str) -> None:
    """Rows (the JSON records a lake stream receives) as a Parquet object of the table, typed by its Glue columns."""
    columns = LAKE_TABLE_COLUMNS[table]
    schema = pa.schema([(column, _ARROW[kind]) for column, kind in columns])
    typed = [{column: _arrow_value(kind, row.get(column)) for column, kind in columns} for row in rows]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(typed, schema=schema), buffer)
    s3.put_object(Bucket=LAKE_BUCKET, Key=f"{table}/dt={day}/{name}.parquet", Body=buffer.getvalue())


def _arrow_value(kind: str, value: Any) -> Any:
    """JSON record value -> Arrow value, as Firehose's record format conversion reads it."""
    if value is None:
        return None
    if kind == "timestamp":
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return value


# -- customer store events ------------------------------------------------------------------------------------------
def created(
    customer_id: str, *, at: datetime = NOW, consents: dict[str, str] | None = None, **attributes: Any
) -> CustomerCreated:
    return CustomerCreated(
        customer_id=customer_id,
        record_source="web",
        identity_types=["email"],
        created_at=at,
        snapshot=ProfileSnapshot(
            version=1,
            attributes=attributes,
            identity_types=["email"],
            consents=consents or {},
        ),
    )


def updated(customer_id: str, version: int, *, at: datetime, **attributes: Any) -> CustomerUpdated:
    return CustomerUpdated(
        customer_id=customer_id,
        record_source="web",
        changed=sorted(attributes),
        updated_at=at,
        snapshot=ProfileSnapshot(version=version, attributes=attributes, identity_types=["email"]),
    )


def order(customer_id: str, interaction_id: str, *, at: datetime = NOW, total: float = 40.0) -> InteractionRecorded:
    return InteractionRecorded(
        customer_id=customer_id,
        interaction_id=interaction_id,
        type="order_completed",
        channel="web",
        record_source="shop",
        occurred_at=at,
        properties={"total": total, "category": "shoes"},
    )


def seed(membership: MembershipService, customer_id: str, *, country: str, orders: Sequence[int] = ()) -> None:
    """A customer created in `country`, with one order (40.0) per number of days ago, through the real-time path."""
    apply_customer_event(membership, created(customer_id, country=country))
    for days_ago in orders:
        at = membership.clock.now() - timedelta(days=days_ago)
        apply_customer_event(membership, order(customer_id, f"int_{customer_id[-6:]}_{days_ago}", at=at))


# -- AWS clients ----------------------------------------------------------------------------------------------------
_CLIENTS: dict[str, Any] = {}


def aws_client(service: str) -> Any:
    """One client per service for the whole session: creating one costs about 0.1 s, and moto answers any
    client's requests while a mock is active (each test's `aws` mock starts empty). Call it inside the mock."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
    return _CLIENTS[service]


# -- DynamoDB -------------------------------------------------------------------------------------------------------
@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = aws_client("dynamodb")
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1_pk", "gsi1_sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1_pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return client


@pytest.fixture
def store(dynamodb: Any) -> AnalysisStore:
    return AnalysisStore(dynamodb, TABLE)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def streams(aws: None) -> LakeStreams:
    return LakeStreams(s3=aws_client("s3"))


@pytest.fixture
def membership(
    store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock, streams: LakeStreams
) -> MembershipService:
    """The real-time service, reading segments afresh on every event (no cache between test steps)."""
    return MembershipService(
        store=store,
        publisher=publisher,
        clock=clock,
        profiles_lake=streams.profiles,
        behaviour_lake=streams.behaviour,
        segments=SegmentCatalogue(store.list_segments, DEFAULT_CATALOG, ttl=-1),
    )


def saved_segment(
    store: AnalysisStore, name: str, rule: dict[str, Any], *, kind: str = "dynamic", at: datetime = NOW
) -> Segment:
    """A segment saved straight into the table, as `SegmentService.create` leaves it (without a build)."""
    parsed: Rule = RULE.validate_python(rule)
    segment = Segment(
        segment_id=new_id("seg_"),
        name=name,
        kind=kind,
        rule=RULE.dump_python(parsed, by_alias=True, exclude_defaults=True, mode="json"),
        rule_text=describe(parsed),
        time_relative=dependencies(parsed).time_relative,
        created_at=at,
        created_by="marketer@example.com",
        updated_at=at,
    )
    store.put_segment(segment)
    return segment


# -- the lake on Athena ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def athena_emulation() -> None:
    athena.install()


@pytest.fixture
def lake(aws: None, athena_emulation: None, streams: LakeStreams) -> AthenaLake:
    """The lake bucket, the Glue database, the two segmentation tables and the transactions engine's order lines
    (OLAP and the order conditions read them), an enforcing work group."""
    s3 = streams.s3
    glue = aws_client("glue")
    client = aws_client("athena")
    s3.create_bucket(Bucket=LAKE_BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for table, columns in LAKE_TABLE_COLUMNS.items():
        glue.create_table(
            DatabaseName=DATABASE,
            TableInput={
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": "2025-01-01,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": f"s3://{LAKE_BUCKET}/{table}/dt=${{dt}}/",
                },
                "PartitionKeys": [{"Name": "dt", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": [{"Name": name, "Type": kind} for name, kind in columns],
                    "Location": f"s3://{LAKE_BUCKET}/{table}/",
                    **PARQUET_STORAGE,
                },
            },
        )
    client.create_work_group(
        Name=WORKGROUP,
        Configuration={
            "ResultConfiguration": {"OutputLocation": QUERY_RESULTS},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    return AthenaLake(client, workgroup=WORKGROUP, database=DATABASE, poll_seconds=0, sleep=lambda _: None)


class RecordingStarter:
    """Step Functions as the segment service sees it: executions started, by name."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []

    def start(self, name: str, payload: dict[str, Any]) -> None:
        self.started.append((name, payload))


@pytest.fixture
def starter() -> RecordingStarter:
    return RecordingStarter()


@pytest.fixture
def segments(store: AnalysisStore, lake: AthenaLake, starter: RecordingStarter, clock: FixedClock) -> SegmentService:
    return SegmentService(store=store, lake=lake, builds=starter, clock=clock, shards=2)


def read_s3(s3: Any, location: str) -> bytes:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body
