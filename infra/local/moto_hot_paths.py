"""Hot paths of moto made proportional to the work, used only by the embedded local cloud.

moto 5.2.5, under the local cloud's steady polling of a dozen queues:
- SQS computes *every* queue attribute, the three approximate counts included (three passes over
  all the queue's messages, each message reading the clock twice), to send one message, to check
  each message it receives against the retention period, and up to five times per
  `GetQueueAttributes`: a queue of n messages costs O(n) per message in and out, so a backlog of a
  thousand events (a customer import feeding three engines) stalls every queue of the server,
  whose GIL they share. Here the retention period is read from the queue itself, and the counts
  are taken in one pass with one reading of the clock.
- DynamoDB `Query` on a table's own key collects the partition by sorting *every* item of the
  table and keeping those with the hash key: each read of one customer costs O(N log N) in the
  table's size. Here the query sees only its partition's items (moto then filters and sorts them
  as before); queries on an index are unchanged.
- Every request is dispatched by listing moto's package directory (`os.listdir` and `isdir` on
  some 180 entries), then matching its host against every service's URL patterns, under one lock
  that all the server's threads share; and then finds its action among the handler's methods with
  `inspect.getmembers`. Here the module list and each host's backend are computed once, and each
  handler class's methods once (none of them changes while the server runs).
- Step Functions' Lambda and SDK tasks build a new boto3 client for every task they run. Here
  clients without state credentials are kept per region and service (boto3 clients are
  thread-safe).
- EventBridge applies each target's input transformation (the default one when the target has
  none) by parsing its JSONPath expressions afresh for every event and target, rebuilding the
  parser's tables each time. Here parsed expressions are kept (they are immutable; `find` does
  not change them).
- EventBridge `PutEvents` builds, for *every* rule of the bus, a deep copy of the event's message
  with its Detail parsed again, and matches it after a JSON round trip and a flattening of its own
  (the platform's bus has some 80 rules, of which an event matches one or two): about 8 ms of the
  server's CPU an event. Here each event is parsed, round-tripped and flattened once and every
  rule's pattern is matched against it with moto's own matcher (`_does_event_match`); a rule that
  matches gets its own fresh message, built as moto builds it, and moto's `send_to_targets`.
Semantics are unchanged: the same messages expire at the same time, the same paths select the
same values.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from typing import Any

import moto.backends
from moto.core.utils import camelcase_to_underscores, unix_time
from moto.dynamodb.models.table import Table
from moto.events.models import EventPattern, EventsBackend
from moto.events.utils import _BASE_EVENT_MESSAGE
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import Queue, SQSBackend
from moto.stepfunctions.parser.asl.utils import boto_client

_installed = False
MOTO_QUEUE_ATTRIBUTES: property = Queue.__dict__["attributes"]  # moto's own, kept to compare against
_moto_query = Table.query
_moto_all_items = Table.all_items
_querying = threading.local()  # the (table, hash key) a query of this thread reads; moto serves from threads


def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Any) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return bool(retention_period + message.sent_timestamp / 1000 > unix_time())


COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible")


def queue_attributes(self: Queue) -> dict[str, Any]:
    """`Queue.attributes`, as moto computes it, with the three counts from one pass over the messages."""
    available = delayed = not_visible = 0
    for message in self._messages:  # moto's own tests, on the clock `sqs_clock` may have put them on
        is_delayed = message.delayed
        is_visible = message.visible
        delayed += is_delayed
        not_visible += not is_visible
        available += is_visible and not is_delayed
    counts = dict(zip(COUNTS, (available, delayed, not_visible), strict=True))
    names = [*self.BASE_ATTRIBUTES]
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:  # type: ignore[attr-defined]
        names += self.KMS_ATTRIBUTES
    result: dict[str, Any] = {
        name: counts[name] if name in counts else getattr(self, camelcase_to_underscores(name)) for name in names
    }
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return {key: str(value).lower() if isinstance(value, bool) else value for key, value in result.items()}


def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    """`Table.query`, reading only the queried partition when it is the table's own key."""
    if kwargs.get("index_name") or (len(args) >= 7 and args[6]) or hash_key is None:
        return _moto_query(self, hash_key, *args, **kwargs)
    _querying.partition = (self, hash_key)
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _querying.partition = None


def all_items(self: Table) -> list[Any]:
    """Every item, as moto lists them; inside a key query of this table, the queried partition's items."""
    partition = getattr(_querying, "partition", None)
    if partition is None or partition[0] is not self:
        return _moto_all_items(self)
    found = self.items.get(partition[1])
    if found is None:
        return []
    return list(found.values()) if self.range_key_attr else [found]


_moto_list_of_moto_modules = moto.backends.list_of_moto_modules
_moto_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_backends_by_host: dict[str | None, Any] = {}


def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    """moto's backend for a request's host, remembered per host (moto calls it under its lock)."""
    if host not in _backends_by_host:
        _backends_by_host[host] = _moto_backend_for_host(self, host)
    return _backends_by_host[host]


_moto_boto_client_for = boto_client.boto_client_for
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """Step Functions' client for a task, kept per region and service unless the state brings credentials."""
    if state_credentials is not None:
        return _moto_boto_client_for(region, service, state_credentials)
    with _clients_lock:
        if (region, service) not in _clients:
            _clients[(region, service)] = _moto_boto_client_for(region, service)
        return _clients[(region, service)]


_moto_put_events = EventsBackend.put_events


def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's `EventsBackend.put_events` (5.2.5: its checks and answers copied as they are), each event matched
    against every rule once parsed and flattened, instead of once per rule."""
    if len(events) > 10 or any(_odd_detail(e) for e in events):
        return _moto_put_events(self, events)  # moto's ValidationException, or its warning of a detail not an object
    entries: list[dict[str, Any]] = []
    for event in events:
        problem = _missing_field(event)
        if problem is not None:
            entries.append(problem)
            continue
        try:
            json.loads(event["Detail"])
        except ValueError:
            entries.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
            continue
        event_id = str(mock_random.uuid4())
        entries.append({"EventId": event_id})
        event_bus = self.describe_event_bus(self._normalize_event_bus_arn(event.get("EventBusName")))
        flat = EventPattern._flatten_dict(json.loads(json.dumps(_event_message(self, event, event_id))))
        for rule in event_bus.rules.values():
            pattern = rule.event_pattern
            if not pattern._pattern or pattern._does_event_match(flat, pattern._pattern):
                rule.send_to_targets(_event_message(self, event, event_id))  # type: ignore[arg-type]
    return entries


def _odd_detail(event: dict[str, Any]) -> bool:
    """A well-formed Detail that is not a JSON object (moto warns and goes on)."""
    if _missing_field(event) is not None:
        return False
    try:
        return not isinstance(json.loads(event["Detail"]), dict)
    except ValueError:
        return False


def _missing_field(event: dict[str, Any]) -> dict[str, str] | None:
    for field, name in (("Source", "Source"), ("DetailType", "DetailType"), ("Detail", "Detail")):
        if not event.get(field):
            return {
                "ErrorCode": "InvalidArgument",
                "ErrorMessage": f"Parameter {name} is not valid. Reason: {name} is a required argument.",
            }
    return None


def _event_message(backend: EventsBackend, event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The message moto gives each rule of the bus: its own copy, its Detail parsed afresh."""
    message: dict[str, Any] = copy.deepcopy(_BASE_EVENT_MESSAGE)  # type: ignore[arg-type]
    message["id"] = event_id
    message["detail-type"] = event["DetailType"]
    message["source"] = event["Source"]
    message["account"] = backend.account_id
    message["time"] = event.get("Time", unix_time())
    message["region"] = backend.region_name
    message["resources"] = event.get("Resources", [])
    message["detail"] = json.loads(event["Detail"])
    message["ingestion-time"] = unix_time()
    return message


def _install_dispatch() -> None:
    import importlib
    import pkgutil

    import moto.core.responses
    from moto.stepfunctions.parser.asl.component.state import exec as state_exec

    modules = list(_moto_list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    moto.core.responses.method_names_from_class = functools.cache(moto.core.responses.method_names_from_class)
    # Every task module imported the function by name: replace it where it was imported.
    for info in pkgutil.walk_packages(state_exec.__path__, state_exec.__name__ + "."):
        module = importlib.import_module(info.name)
        if getattr(module, "boto_client_for", None) is _moto_boto_client_for:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def install() -> None:
    global _installed
    if _installed:
        return
    import jsonpath_ng.ext

    _install_dispatch()

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    EventsBackend.put_events = put_events  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Queue.attributes = property(queue_attributes)  # type: ignore[assignment,method-assign]
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
    _installed = True
