"""Firehose record format conversion (JSON -> Parquet into S3), as Amazon Data Firehose does it.

moto 5.2.5 stores a delivery stream's whole `ExtendedS3DestinationConfiguration` but delivers
every `PutRecord(Batch)` as the raw bytes concatenated into one object under
`<Prefix>YYYY/MM/DD/HH/` (namespace expressions such as `!{timestamp:yyyy-MM-dd}` left as they
are), whatever `DataFormatConversionConfiguration` says. The lake's tables would then hold JSON
where Athena and DuckDB expect Parquet.

`install()` makes moto's Firehose, in this process (the local cloud runs its moto server in
process), deliver a stream whose destination has format conversion enabled as Firehose does:

- each record is read with the OpenX JSON SerDe's rules (one or more JSON objects per record,
  keys case-insensitive unless `CaseInsensitive` is false, `ColumnToJsonKeyMappings`,
  `ConvertDotsInJsonKeysToUnderscores`; missing keys are nulls, unknown keys are dropped; a JSON
  value in a `string` column is kept as its JSON text) against the columns of the Glue table the
  stream's `SchemaConfiguration` names, read from moto's Glue;
- timestamps as the SerDe reads them: `yyyy-MM-ddTHH:mm:ss[.fraction]Z`, `yyyy-MM-dd HH:mm:ss[.f]`,
  epoch seconds, milliseconds or fractional seconds; stored as Parquet `timestamp(ms, UTC)`;
- the records that fit become one Snappy Parquet object at
  `<Prefix with namespaces evaluated>/<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><FileExtension>`
  (Firehose's object name), the day and time being the records' arrival time (UTC unless
  `CustomTimeZone`); a prefix without `!{timestamp:...}` gets `yyyy/MM/dd/HH/` appended, as in AWS;
- the records that do not fit go, one JSON document per line, to the `ErrorOutputPrefix` with
  `!{firehose:error-output-type}` = `format-conversion-failed`, in Firehose's error document shape
  (`lastErrorCode`, `lastErrorMessage`, base64 `rawData`, `dataCatalogTable`, ...).

One deliberate difference: nothing is buffered. Each put call is delivered before its response
(AWS: after `BufferingHints`, 60-900 s or up to 128 MB), so a test sees its objects at once.
Streams without format conversion keep moto's own delivery. `PutRecord(Batch)` answers
`Encrypted: true` when the stream has server-side encryption (moto: always false).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

FORMAT_CONVERSION_FAILED = "format-conversion-failed"
MALFORMED_DATA = "DataFormatConversion.MalformedData"
ENTITY_NOT_FOUND = "DataFormatConversion.EntityNotFound"

_installed = False
_install_lock = threading.Lock()
_original_put_record_batch: Callable[..., dict[str, Any]] | None = None


class RecordError(ValueError):
    """A record the table's schema cannot read: it goes to the error output."""


# -- installing -----------------------------------------------------------------------------------
def install() -> None:
    """Deliver format-converting streams as Firehose does (idempotent, process-wide)."""
    global _installed, _original_put_record_batch
    with _install_lock:
        if _installed:
            return
        from moto.firehose.models import FirehoseBackend

        _original_put_record_batch = FirehoseBackend.put_record_batch
        FirehoseBackend.put_record_batch = _put_record_batch  # type: ignore[method-assign,assignment]
        FirehoseBackend.put_record = _put_record  # type: ignore[method-assign,assignment]
        _installed = True


def _put_record(backend: Any, delivery_stream_name: str, record: dict[str, bytes]) -> dict[str, Any]:
    result = backend.put_record_batch(delivery_stream_name, [record])
    return {"RecordId": result["RequestResponses"][0]["RecordId"], "Encrypted": result["Encrypted"]}


def _put_record_batch(backend: Any, delivery_stream_name: str, records: list[dict[str, bytes]]) -> dict[str, Any]:
    assert _original_put_record_batch is not None
    stream = backend.delivery_streams.get(delivery_stream_name)
    destination = converting_destination(stream) if stream is not None else None
    if destination is None:
        result = _original_put_record_batch(backend, delivery_stream_name, records)
    else:
        deliver(
            account=backend.account_id,
            region=backend.region_name,
            stream_name=delivery_stream_name,
            version_id=str(stream.version_id),
            destination=destination,
            records=[bytes(r["Data"]) for r in records],
            arrival=datetime.now(UTC),
        )
        result = {
            "FailedPutCount": 0,
            "RequestResponses": [{"RecordId": _record_id()} for _ in records],
        }
    encryption: dict[str, Any] = (stream.delivery_stream_encryption_configuration if stream else None) or {}
    result["Encrypted"] = bool(encryption) and encryption.get("Status", "ENABLED") == "ENABLED"
    return result


def converting_destination(stream: Any) -> dict[str, Any] | None:
    """The stream's ExtendedS3 destination if it converts records to Parquet/ORC, else None."""
    for destination in stream.destinations:
        config = destination.get("ExtendedS3")
        conversion = (config or {}).get("DataFormatConversionConfiguration")
        if conversion and conversion.get("Enabled", True):
            return dict(config)
    return None


# -- delivering -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivered:
    """What one put call wrote: the data object (if any record fit) and the error object (if not)."""

    bucket: str
    data_key: str | None
    error_key: str | None
    rows: int
    failed: int


def deliver(
    *,
    account: str,
    region: str,
    stream_name: str,
    version_id: str,
    destination: dict[str, Any],
    records: list[bytes],
    arrival: datetime,
) -> Delivered:
    """Convert `records` with the destination's schema and write them to S3 as Firehose would."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    conversion = destination["DataFormatConversionConfiguration"]
    serializer = conversion.get("OutputFormatConfiguration", {}).get("Serializer", {})
    if "ParquetSerDe" not in serializer:
        raise NotImplementedError(f"{stream_name}: the local cloud converts to Parquet only, not {sorted(serializer)}")
    deserializer = conversion.get("InputFormatConfiguration", {}).get("Deserializer", {})
    if "OpenXJsonSerDe" not in deserializer:
        raise NotImplementedError(f"{stream_name}: the local cloud reads records with the OpenX JSON SerDe only")
    schema = conversion["SchemaConfiguration"]
    reader = JsonReader(deserializer["OpenXJsonSerDe"] or {})
    local_time = (
        arrival.astimezone(ZoneInfo(destination["CustomTimeZone"])) if destination.get("CustomTimeZone") else arrival
    )
    name = f"{stream_name}-{version_id}-{local_time:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
    bucket = destination["BucketARN"].split(":")[-1]
    s3 = s3_backends[account][get_partition(region)]

    failures: list[tuple[bytes, str, str]] = []
    rows: list[dict[str, Any]] = []
    try:
        columns = table_columns(schema, account=account, region=region)
    except LookupError as exc:
        logger.warning("Firehose %s: %s", stream_name, exc)
        failures = [(raw, ENTITY_NOT_FOUND, str(exc)) for raw in records]
    else:
        for raw in records:
            try:
                rows.extend(reader.rows(raw, columns))
            except RecordError as exc:
                failures.append((raw, MALFORMED_DATA, str(exc)))

    data_key = error_key = None
    if rows:
        data_key = (
            render_prefix(destination.get("Prefix", ""), local_time) + name + destination.get("FileExtension", "")
        )
        s3.put_object(bucket, data_key, parquet_bytes(rows, columns, serializer["ParquetSerDe"] or {}))
    if failures:
        error_prefix = destination.get("ErrorOutputPrefix") or f"{FORMAT_CONVERSION_FAILED}/"
        error_key = render_prefix(error_prefix, local_time, error_output_type=FORMAT_CONVERSION_FAILED) + name
        body = "".join(
            json.dumps(error_document(raw, code, message, arrival, schema, account=account, region=region)) + "\n"
            for raw, code, message in failures
        )
        s3.put_object(bucket, error_key, body.encode())
    return Delivered(bucket, data_key, error_key, len(rows), len(failures))


def table_columns(schema: dict[str, Any], *, account: str, region: str) -> list[tuple[str, str]]:
    """(name, Glue type) of the schema's table, from moto's Glue Data Catalog."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue.models import glue_backends

    catalog = schema.get("CatalogId") or account
    glue = glue_backends[catalog][schema.get("Region") or region]
    version = schema.get("VersionId", "LATEST")
    try:
        table = glue.get_table(schema["DatabaseName"], schema["TableName"])
        described = table.as_dict(None if version == "LATEST" else version)
    except JsonRESTError as exc:
        raise LookupError(
            f"Glue table {schema.get('DatabaseName')}.{schema.get('TableName')} (version {version}): {exc.message}"
        ) from exc
    return [(c["Name"], c["Type"]) for c in described.get("StorageDescriptor", {}).get("Columns", [])]


def error_document(
    raw: bytes,
    code: str,
    message: str,
    arrival: datetime,
    schema: dict[str, Any],
    *,
    account: str,
    region: str,
) -> dict[str, Any]:
    """Firehose's JSON document for a record that format conversion failed."""
    arrived_ms = int(arrival.timestamp() * 1000)
    catalog = schema.get("CatalogId") or account
    catalog_region = schema.get("Region") or region
    return {
        "attemptsMade": 1,
        "arrivalTimestamp": arrived_ms,
        "lastErrorCode": code,
        "lastErrorMessage": message,
        "attemptEndingTimestamp": int(datetime.now(UTC).timestamp() * 1000),
        "rawData": base64.b64encode(raw).decode(),
        "sequenceNumber": _sequence_number(),
        "subSequenceNumber": None,
        "dataCatalogTable": {
            "catalogId": catalog,
            "databaseName": schema.get("DatabaseName"),
            "tableName": schema.get("TableName"),
            "region": catalog_region,
            "versionId": schema.get("VersionId", "LATEST"),
            "catalogArn": f"arn:aws:glue:{catalog_region}:{catalog}:catalog",
        },
    }


# -- prefixes -------------------------------------------------------------------------------------
_NAMESPACE = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_JAVA_DATE_TOKEN = re.compile(r"yyyy|MM|dd|HH|mm|ss|'[^']*'|[A-Za-z]|[^A-Za-z']+")
_JAVA_DATE_FIELDS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def render_prefix(prefix: str, at: datetime, *, error_output_type: str | None = None) -> str:
    """Evaluate Firehose's namespace expressions in an S3 prefix, as of `at`."""
    if "!{timestamp:" not in prefix:
        prefix = prefix + "!{timestamp:yyyy/MM/dd/HH/}"

    def evaluate(match: re.Match[str]) -> str:
        namespace, argument = match.group(1), match.group(2)
        if namespace == "timestamp":
            return java_date_format(argument, at)
        if namespace == "firehose" and argument == "random-string":
            return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))
        if namespace == "firehose" and argument == "error-output-type" and error_output_type:
            return error_output_type
        raise NotImplementedError(f"the local cloud does not evaluate !{{{namespace}:{argument}}} in an S3 prefix")

    return _NAMESPACE.sub(evaluate, prefix)


def java_date_format(pattern: str, at: datetime) -> str:
    """A Java DateTimeFormatter pattern (the subset Firehose prefixes use) applied to `at`."""
    out = []
    for token in _JAVA_DATE_TOKEN.findall(pattern):
        if token in _JAVA_DATE_FIELDS:
            out.append(at.strftime(_JAVA_DATE_FIELDS[token]))
        elif token.startswith("'"):
            out.append(token.strip("'") or "'")
        elif token.isalpha():
            raise NotImplementedError(f"the local cloud does not format {token!r} in !{{timestamp:{pattern}}}")
        else:
            out.append(token)
    return "".join(out)


# -- reading JSON records (OpenX JSON SerDe) ------------------------------------------------------
class JsonReader:
    """The OpenX JSON SerDe's reading of a record into rows of the table's columns."""

    def __init__(self, serde: dict[str, Any]) -> None:
        self.case_insensitive = serde.get("CaseInsensitive", True)
        self.dots_to_underscores = serde.get("ConvertDotsInJsonKeysToUnderscores", False)
        self.key_for_column = dict(serde.get("ColumnToJsonKeyMappings") or {})

    def rows(self, raw: bytes, columns: list[tuple[str, str]]) -> list[dict[str, Any]]:
        documents = list(_json_documents(raw))
        if not documents:
            raise RecordError("The record holds no JSON document")
        return [self._row(document, columns) for document in documents]

    def _row(self, document: Any, columns: list[tuple[str, str]]) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise RecordError(f"A record must hold JSON objects, not {type(document).__name__}")
        members: dict[str, Any] = {}
        for key, value in document.items():
            name = key.replace(".", "_") if self.dots_to_underscores else key
            members.setdefault(name.lower() if self.case_insensitive else name, value)
        row = {}
        for column, kind in columns:
            key = self.key_for_column.get(column, column)
            value = members.get(key.lower() if self.case_insensitive else key)
            try:
                row[column] = None if value is None else convert(value, kind)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise RecordError(f"Column {column} ({kind}): {exc}") from None
        return row


def _json_documents(raw: bytes) -> Iterator[Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"The record is not UTF-8: {exc}") from None
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise RecordError(f"The record is not valid JSON: {exc}") from None
        yield document


_TIMESTAMP = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?$")
_INTEGER_RANGES = {"tinyint": 8, "smallint": 16, "int": 32, "integer": 32, "bigint": 64}


def convert(value: Any, kind: str) -> Any:
    """A JSON value as the Python value of Glue type `kind` (ValueError/TypeError when it does not fit)."""
    kind = kind.strip().lower()
    if kind == "string" or kind.startswith(("varchar", "char")):
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ValueError(f"{value!r} is not a boolean")
    if kind in _INTEGER_RANGES:
        number = _integer(value)
        bits = _INTEGER_RANGES[kind]
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ValueError(f"{value!r} is out of range")
        return number
    if kind in {"float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if kind.startswith("decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        return _decimal(value, kind)
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date")
        return date.fromisoformat(value)
    if kind == "timestamp":
        return parse_timestamp(value)
    raise NotImplementedError(f"the local cloud does not convert Glue type {kind!r}")


def parse_timestamp(value: Any) -> datetime:
    """A timestamp in one of the forms the OpenX JSON SerDe reads, in UTC, to the millisecond."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
        instant = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str) and (match := _TIMESTAMP.match(value)):
        year, month, day, hour, minute, second, fraction = match.groups()
        instant = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        instant += timedelta(microseconds=int((fraction or "0").ljust(9, "0")[:6]))
    else:
        raise ValueError(f"{value!r} is not a timestamp the OpenX JSON SerDe reads (use ISO 8601 with Z)")
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def _decimal(value: Any, kind: str) -> Decimal:
    match = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", kind)
    precision, scale = (int(match.group(1)), int(match.group(2))) if match else (10, 0)
    try:
        number = Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal") from None
    if len(number.as_tuple().digits) > precision:
        raise ValueError(f"{value!r} does not fit {kind}")
    return number


# -- writing Parquet ------------------------------------------------------------------------------
def parquet_bytes(rows: list[dict[str, Any]], columns: list[tuple[str, str]], serde: dict[str, Any]) -> bytes:
    """The rows as one Parquet file with the table's columns (ParquetSerDe's compression, Snappy by default)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(name, arrow_type(kind)) for name, kind in columns])
    table = pa.Table.from_pylist(rows, schema=schema)
    compression = str(serde.get("Compression", "SNAPPY")).lower()
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none" if compression == "uncompressed" else compression)
    return buffer.getvalue()


def arrow_type(kind: str) -> Any:
    import pyarrow as pa

    kind = kind.strip().lower()
    if kind == "string" or kind.startswith(("varchar", "char")):
        return pa.string()
    simple = {
        "boolean": pa.bool_(),
        "tinyint": pa.int8(),
        "smallint": pa.int16(),
        "int": pa.int32(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
    }
    if kind in simple:
        return simple[kind]
    match = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", kind)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if kind == "decimal":
        return pa.decimal128(10, 0)
    raise NotImplementedError(f"the local cloud does not write Glue type {kind!r} to Parquet")


def _record_id() -> str:
    return secrets.token_hex(56)


def _sequence_number() -> str:
    return str(secrets.randbelow(10**56)).rjust(56, "0")


# -- provisioning ---------------------------------------------------------------------------------
def delivery_stream_arguments(name: str, properties: dict[str, Any], service_model: Any) -> dict[str, Any]:
    """`CreateDeliveryStream` arguments from a resolved `AWS::KinesisFirehose::DeliveryStream`.

    CloudFormation's property names are the API's; what the API does not know (at any depth) is
    dropped with a warning, and numbers and booleans written as strings are converted.
    """
    shape = service_model.operation_model("CreateDeliveryStream").input_shape
    return dict(_api_value(shape, {**properties, "DeliveryStreamName": name}, path=""))


def _api_value(shape: Any, value: Any, *, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key not in shape.members:
                logger.warning("Firehose: the API has no %s%s; the local cloud leaves it out", path, key)
                continue
            out[key] = _api_value(shape.members[key], item, path=f"{path}{key}.")
        return out
    if kind == "list" and isinstance(value, list):
        return [_api_value(shape.member, item, path=path) for item in value]
    if kind in {"integer", "long"} and isinstance(value, str):
        return int(value)
    if kind in {"float", "double"} and isinstance(value, str):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value
