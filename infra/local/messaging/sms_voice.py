"""AWS End User Messaging SMS and voice (`pinpoint-sms-voice-v2`), which moto 5.2.5 does not have.

The operations the platform calls, answered in the service's shapes (the protocol, validation and
serialization are botocore's model: see `protocol`):

- origination identities: `RequestPhoneNumber` (an ACTIVE number of the country, capabilities and
  type asked, on the `Default` opt-out list), `DescribePhoneNumbers` (ids and filters),
  `UpdatePhoneNumber` (two-way channel, self-managed opt-outs, opt-out list),
  `ReleasePhoneNumber`; `RequestSenderId` / `DescribeSenderIds`; `CreatePool` / `DescribePools`
  / `UpdatePool` / `DeletePool`. An identity is named by id, ARN or the number/sender id itself.
- opt-out lists: `CreateOptOutList`, `DescribeOptOutLists`, `DeleteOptOutList` (the `Default`
  list always exists), `PutOptedOutNumber`, `DescribeOptedOutNumbers`, `DeleteOptedOutNumber`.
- keywords: `DescribeKeywords` (HELP and STOP on every number, as AWS sets them) and `PutKeyword`.
- `SendTextMessage` and `SendVoiceMessage` (text-to-speech: the body, `MessageBodyTextType` and
  `VoiceId` are kept). A destination on the opt-out list of the identity that sends is refused as
  AWS refuses it: `ConflictException`, Reason `DESTINATION_PHONE_NUMBER_OPTED_OUT`. A voice send
  needs an identity with the VOICE capability, a text send one with SMS.
- configuration sets with event destinations (`CreateConfigurationSet`, `DescribeConfigurationSets`,
  `DeleteConfigurationSet`, `CreateEventDestination`, `UpdateEventDestination`,
  `DeleteEventDestination`): a send through a configuration set publishes the delivery events
  its destinations match (`ALL`, `TEXT_ALL`, `VOICE_ALL` or the types), in the documented event
  JSON, to an SNS topic, a Firehose stream or a CloudWatch Logs group. A text goes
  TEXT_PENDING -> TEXT_SUCCESSFUL -> TEXT_DELIVERED, a call VOICE_INITIATED -> VOICE_RINGING ->
  VOICE_ANSWERED -> VOICE_COMPLETED, unless a final outcome was simulated for the destination
  (`simulate_outcome`: TEXT_BLOCKED, TEXT_CARRIER_UNREACHABLE, VOICE_NO_ANSWER, ...).
- inbound messages (`receive`): a reply to a two-way number is published to its
  `TwoWayChannelArn` topic as the documented inbound JSON; an opt-out keyword (STOP, UNSUBSCRIBE,
  ARRET, ... or one put with OPT_OUT) adds the sender to the number's opt-out list unless
  self-managed opt-outs are on, and an OPT_OUT or AUTOMATIC_RESPONSE keyword (HELP) is answered
  with its message from the number, as AWS answers it.

Deliberate differences: events are published before the send returns (AWS: seconds to hours
later); there are no prices (0), registrations, spend limits or protect configurations.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.local.messaging import destinations
from infra.local.messaging.protocol import Handler, RequestContext, ServiceError
from infra.local.messaging.timekeeping import epoch_millis, now

SERVICE = "pinpoint-sms-voice-v2"
DEFAULT_OPT_OUT_LIST = "Default"
# AWS's required opt-out keywords (US, Canada and elsewhere where the law requires them).
OPT_OUT_KEYWORDS = ("ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD", "UNSUBSCRIBE")
DEFAULT_HELP = "Reply STOP to opt out of messages from this number. Msg&data rates may apply."
DEFAULT_STOP = "You have been unsubscribed and will receive no further messages from this number."
TEXT_FLOW = ("TEXT_PENDING", "TEXT_SUCCESSFUL", "TEXT_DELIVERED")
VOICE_FLOW = ("VOICE_INITIATED", "VOICE_RINGING", "VOICE_ANSWERED", "VOICE_COMPLETED")
STATUS_DESCRIPTIONS = {
    "PENDING": "Message is pending delivery",
    "SUCCESSFUL": "Message has been accepted by phone carrier",
    "DELIVERED": "Message has been delivered to the device",
    "BLOCKED": "Message was blocked by the carrier",
    "CARRIER_BLOCKED": "Message was blocked by the carrier",
    "CARRIER_UNREACHABLE": "The carrier could not be reached",
    "UNREACHABLE": "The destination phone is unreachable",
    "INVALID": "The destination phone number is not valid",
    "SPAM": "Message was marked as spam by the carrier",
    "UNKNOWN": "The final status of the message is unknown",
    "TTL_EXPIRED": "Message was not delivered before its time to live",
}


@dataclass
class Account:
    """One account and region's End User Messaging SMS resources."""

    account: str
    region: str
    phone_numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sender_ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    opt_out_lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    configuration_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    keywords: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # identity arn -> keyword
    messages: list[dict[str, Any]] = field(default_factory=list)  # every text and call, in order
    inbound: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # destination -> simulated final event type

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:sms-voice:{self.region}:{self.account}:{kind}/{resource_id}"

    def opt_out_list(self, name: str) -> dict[str, Any]:
        if name == DEFAULT_OPT_OUT_LIST and name not in self.opt_out_lists:
            self.opt_out_lists[name] = {
                "OptOutListArn": self.arn("opt-out-list", name),
                "OptOutListName": name,
                "CreatedTimestamp": now(),
                "numbers": {},
            }
        if name not in self.opt_out_lists:
            raise _not_found("opt-out-list", name)
        return self.opt_out_lists[name]


_lock = threading.RLock()
_accounts: dict[tuple[str, str], Account] = {}


def account(account_id: str, region: str) -> Account:
    with _lock:
        key = (account_id, region)
        if key not in _accounts:
            _accounts[key] = Account(account_id, region)
            _accounts[key].opt_out_list(DEFAULT_OPT_OUT_LIST)
        return _accounts[key]


def accounts() -> list[Account]:
    with _lock:
        return list(_accounts.values())


def reset() -> None:
    with _lock:
        _accounts.clear()


def _not_found(resource_type: str, resource_id: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"The {resource_type} {resource_id} does not exist",
        ResourceType=resource_type,
        ResourceId=resource_id,
    )


def _conflict(reason: str, message: str, resource_type: str, resource_id: str) -> ServiceError:
    return ServiceError("ConflictException", message, Reason=reason, ResourceType=resource_type, ResourceId=resource_id)


def _invalid(reason: str, message: str) -> ServiceError:
    return ServiceError("ValidationException", message, Reason=reason)


# -- origination identities ----------------------------------------------------------------------
def _new_number(iso_country: str) -> str:
    import phonenumbers

    code = phonenumbers.country_code_for_region(iso_country) or 1
    return f"+{code}555{secrets.randbelow(10**6):06d}"


def request_phone_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        list_name = params.get("OptOutListName", DEFAULT_OPT_OUT_LIST)
        acct.opt_out_list(list_name)
        number_id = "phone-" + uuid.uuid4().hex
        number = {
            "PhoneNumberArn": acct.arn("phone-number", number_id),
            "PhoneNumberId": number_id,
            "PhoneNumber": _new_number(params["IsoCountryCode"]),
            "Status": "ACTIVE",
            "IsoCountryCode": params["IsoCountryCode"],
            "MessageType": params["MessageType"],
            "NumberCapabilities": params["NumberCapabilities"],
            "NumberType": params["NumberType"],
            "MonthlyLeasingPrice": "0.00",
            "TwoWayEnabled": False,
            "SelfManagedOptOutsEnabled": False,
            "OptOutListName": list_name,
            "InternationalSendingEnabled": params.get("InternationalSendingEnabled", False),
            "DeletionProtectionEnabled": params.get("DeletionProtectionEnabled", False),
            "Tags": params.get("Tags", []),
            "CreatedTimestamp": now(),
        }
        acct.phone_numbers[number_id] = number
        if params.get("PoolId"):
            pool = _pool(acct, params["PoolId"])
            pool["members"].append(number["PhoneNumberArn"])
            number["PoolId"] = pool["PoolId"]
        return number


def _phone_number(acct: Account, key: str) -> dict[str, Any]:
    for number in acct.phone_numbers.values():
        if key in (number["PhoneNumberId"], number["PhoneNumberArn"], number["PhoneNumber"]):
            return number
    raise _not_found("phone-number", key)


def describe_phone_numbers(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        numbers = (
            [_phone_number(acct, key) for key in params["PhoneNumberIds"]]
            if params.get("PhoneNumberIds")
            else list(acct.phone_numbers.values())
        )
        return {"PhoneNumbers": [n for n in numbers if _matches(n, params.get("Filters", []))]}


_FILTER_FIELDS = {
    "status": "Status",
    "iso-country-code": "IsoCountryCode",
    "message-type": "MessageType",
    "number-capability": "NumberCapabilities",
    "number-type": "NumberType",
    "two-way-enabled": "TwoWayEnabled",
    "self-managed-opt-outs-enabled": "SelfManagedOptOutsEnabled",
    "opt-out-list-name": "OptOutListName",
    "deletion-protection-enabled": "DeletionProtectionEnabled",
    "two-way-channel-arn": "TwoWayChannelArn",
    "shared-routes-enabled": "SharedRoutesEnabled",
}


def _matches(resource: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    for wanted in filters:
        value = resource.get(_FILTER_FIELDS.get(wanted["Name"], wanted["Name"]))
        values = value if isinstance(value, list) else [value]
        texts = {str(v).lower() if isinstance(v, bool) else str(v) for v in values}
        if not texts & set(wanted["Values"]):
            return False
    return True


def update_phone_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        number = _phone_number(acct, params["PhoneNumberId"])
        _apply_two_way(number, params, acct)
        return number


def _apply_two_way(resource: dict[str, Any], params: dict[str, Any], acct: Account) -> None:
    if "OptOutListName" in params:
        acct.opt_out_list(params["OptOutListName"])
    for name in (
        "TwoWayEnabled",
        "TwoWayChannelArn",
        "TwoWayChannelRole",
        "SelfManagedOptOutsEnabled",
        "OptOutListName",
        "InternationalSendingEnabled",
        "DeletionProtectionEnabled",
        "SharedRoutesEnabled",
    ):
        if name in params and name in _updatable(resource):
            resource[name] = params[name]
    if resource.get("TwoWayEnabled") and not resource.get("TwoWayChannelArn"):
        raise _invalid("TWO_WAY_CHANNEL_NOT_PRESENT", "Two-way messaging needs a TwoWayChannelArn")


def _updatable(resource: dict[str, Any]) -> set[str]:
    names = {
        "TwoWayEnabled",
        "TwoWayChannelArn",
        "TwoWayChannelRole",
        "SelfManagedOptOutsEnabled",
        "OptOutListName",
        "DeletionProtectionEnabled",
    }
    return names | (
        {"SharedRoutesEnabled"} if "PoolId" in resource and "PoolArn" in resource else {"InternationalSendingEnabled"}
    )


def release_phone_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        number = _phone_number(acct, params["PhoneNumberId"])
        if number["DeletionProtectionEnabled"]:
            raise _conflict(
                "DELETION_PROTECTION_ENABLED",
                "Deletion protection is enabled on the phone number",
                "phone-number",
                number["PhoneNumberId"],
            )
        del acct.phone_numbers[number["PhoneNumberId"]]
        for pool in acct.pools.values():
            if number["PhoneNumberArn"] in pool["members"]:
                pool["members"].remove(number["PhoneNumberArn"])
        return {**number, "Status": "DELETED"}


def request_sender_id(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        key = f"{params['SenderId']}/{params['IsoCountryCode']}"
        sender = {
            "SenderIdArn": acct.arn("sender-id", key),
            "SenderId": params["SenderId"],
            "IsoCountryCode": params["IsoCountryCode"],
            "MessageTypes": params.get("MessageTypes", ["TRANSACTIONAL"]),
            "MonthlyLeasingPrice": "0.00",
            "DeletionProtectionEnabled": params.get("DeletionProtectionEnabled", False),
            "Registered": False,
            "Tags": params.get("Tags", []),
            "OptOutListName": DEFAULT_OPT_OUT_LIST,
            "SelfManagedOptOutsEnabled": False,
            "NumberCapabilities": ["SMS"],
        }
        acct.sender_ids[key] = sender
        return sender


def describe_sender_ids(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        wanted = {f"{s['SenderId']}/{s['IsoCountryCode']}" for s in params.get("SenderIds", [])}
        return {"SenderIds": [s for k, s in acct.sender_ids.items() if not wanted or k in wanted]}


def create_pool(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        first = _identity(acct, params["OriginationIdentity"])
        pool_id = "pool-" + uuid.uuid4().hex
        pool = {
            "PoolArn": acct.arn("pool", pool_id),
            "PoolId": pool_id,
            "Status": "ACTIVE",
            "MessageType": params["MessageType"],
            "TwoWayEnabled": False,
            "SelfManagedOptOutsEnabled": False,
            "OptOutListName": DEFAULT_OPT_OUT_LIST,
            "SharedRoutesEnabled": False,
            "DeletionProtectionEnabled": params.get("DeletionProtectionEnabled", False),
            "Tags": params.get("Tags", []),
            "CreatedTimestamp": now(),
            "members": [first.get("PhoneNumberArn") or first["SenderIdArn"]],
        }
        acct.pools[pool_id] = pool
        if "PhoneNumberId" in first:
            first["PoolId"] = pool_id
        return pool


def _pool(acct: Account, key: str) -> dict[str, Any]:
    for pool in acct.pools.values():
        if key in (pool["PoolId"], pool["PoolArn"]):
            return pool
    raise _not_found("pool", key)


def describe_pools(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        pools = [_pool(acct, p) for p in params["PoolIds"]] if params.get("PoolIds") else list(acct.pools.values())
        return {"Pools": [p for p in pools if _matches(p, params.get("Filters", []))]}


def update_pool(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        pool = _pool(acct, params["PoolId"])
        _apply_two_way(pool, params, acct)
        return pool


def delete_pool(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        pool = _pool(acct, params["PoolId"])
        del acct.pools[pool["PoolId"]]
        for number in acct.phone_numbers.values():
            if number.get("PoolId") == pool["PoolId"]:
                number.pop("PoolId")
        return {**pool, "Status": "DELETED"}


def _identity(acct: Account, key: str) -> dict[str, Any]:
    """A phone number, sender id or pool named by id, ARN or value."""
    for number in acct.phone_numbers.values():
        if key in (number["PhoneNumberId"], number["PhoneNumberArn"], number["PhoneNumber"]):
            return number
    for sender in acct.sender_ids.values():
        if key in (sender["SenderIdArn"], sender["SenderId"]):
            return sender
    for pool in acct.pools.values():
        if key in (pool["PoolId"], pool["PoolArn"]):
            return pool
    resource_type = "pool" if key.startswith("pool-") else "sender-id" if key[:1] not in "+p" else "phone-number"
    raise _not_found(resource_type, key)


def _identity_arn(identity: dict[str, Any]) -> str:
    return str(identity.get("PhoneNumberArn") or identity.get("SenderIdArn") or identity.get("PoolArn"))


def _sender(acct: Account, identity: dict[str, Any], capability: str, destination: str) -> dict[str, Any]:
    """The phone number or sender id that sends for `identity` (a pool picks one of its members)."""
    if "PoolArn" not in identity:
        candidates = [identity]
    else:
        candidates = [
            item
            for arn in identity["members"]
            for item in (*acct.phone_numbers.values(), *acct.sender_ids.values())
            if _identity_arn(item) == arn
        ]
    for candidate in candidates:
        if capability in candidate.get("NumberCapabilities", []):
            return candidate
    raise _conflict(
        "NUMBER_CAPABILITIES_MISMATCH",
        f"The origination identity cannot send {capability} to {destination}",
        "pool" if "PoolArn" in identity else "phone-number",
        identity.get("PoolId") or identity.get("PhoneNumberId") or identity.get("SenderId", ""),
    )


# -- opt-out lists -------------------------------------------------------------------------------
def create_opt_out_list(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        name = params["OptOutListName"]
        if name in acct.opt_out_lists:
            raise _conflict("RESOURCE_ALREADY_EXISTS", f"Opt-out list {name} already exists", "opt-out-list", name)
        acct.opt_out_lists[name] = {
            "OptOutListArn": acct.arn("opt-out-list", name),
            "OptOutListName": name,
            "CreatedTimestamp": now(),
            "Tags": params.get("Tags", []),
            "numbers": {},
        }
        return acct.opt_out_lists[name]


def describe_opt_out_lists(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        names = params.get("OptOutListNames") or list(acct.opt_out_lists)
        return {"OptOutLists": [acct.opt_out_list(n) for n in names]}


def delete_opt_out_list(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        listing = acct.opt_out_list(params["OptOutListName"])
        users = [
            r
            for r in (*acct.phone_numbers.values(), *acct.pools.values())
            if r["OptOutListName"] == listing["OptOutListName"]
        ]
        if users or listing["OptOutListName"] == DEFAULT_OPT_OUT_LIST:
            raise _conflict(
                "RESOURCE_DELETION_NOT_ALLOWED",
                "The opt-out list is in use",
                "opt-out-list",
                listing["OptOutListName"],
            )
        del acct.opt_out_lists[listing["OptOutListName"]]
        return listing


def put_opted_out_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        return _opt_out(acct, params["OptOutListName"], params["OptedOutNumber"], end_user=False)


def _opt_out(acct: Account, list_name: str, number: str, *, end_user: bool) -> dict[str, Any]:
    listing = acct.opt_out_list(list_name)
    entry = listing["numbers"].setdefault(
        number, {"OptedOutNumber": number, "OptedOutTimestamp": now(), "EndUserOptedOut": end_user}
    )
    return {"OptOutListArn": listing["OptOutListArn"], "OptOutListName": list_name, **entry}


def describe_opted_out_numbers(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        listing = acct.opt_out_list(params["OptOutListName"])
        numbers = list(listing["numbers"].values())
        if params.get("OptedOutNumbers"):
            numbers = [n for n in numbers if n["OptedOutNumber"] in params["OptedOutNumbers"]]
        for wanted in params.get("Filters", []):
            if wanted["Name"] == "end-user-opted-out":
                numbers = [n for n in numbers if str(n["EndUserOptedOut"]).lower() in wanted["Values"]]
        return {
            "OptOutListArn": listing["OptOutListArn"],
            "OptOutListName": listing["OptOutListName"],
            "OptedOutNumbers": numbers,
        }


def delete_opted_out_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        listing = acct.opt_out_list(params["OptOutListName"])
        number = params["OptedOutNumber"]
        if number not in listing["numbers"]:
            raise _not_found("opted-out-number", number)
        entry = listing["numbers"].pop(number)
        return {"OptOutListArn": listing["OptOutListArn"], "OptOutListName": listing["OptOutListName"], **entry}


# -- keywords ------------------------------------------------------------------------------------
def _keywords(acct: Account, identity: dict[str, Any]) -> dict[str, dict[str, str]]:
    defaults = {
        "HELP": {"Keyword": "HELP", "KeywordMessage": DEFAULT_HELP, "KeywordAction": "AUTOMATIC_RESPONSE"},
        "STOP": {"Keyword": "STOP", "KeywordMessage": DEFAULT_STOP, "KeywordAction": "OPT_OUT"},
    }
    return acct.keywords.setdefault(_identity_arn(identity), defaults)


def describe_keywords(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        identity = _identity(acct, params["OriginationIdentity"])
        keywords = list(_keywords(acct, identity).values())
        if params.get("Keywords"):
            keywords = [k for k in keywords if k["Keyword"] in {w.upper() for w in params["Keywords"]}]
        return {
            "OriginationIdentityArn": _identity_arn(identity),
            "OriginationIdentity": params["OriginationIdentity"],
            "Keywords": keywords,
        }


def put_keyword(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        identity = _identity(acct, params["OriginationIdentity"])
        keyword = {
            "Keyword": params["Keyword"].upper(),
            "KeywordMessage": params["KeywordMessage"],
            "KeywordAction": params.get("KeywordAction", "AUTOMATIC_RESPONSE"),
        }
        _keywords(acct, identity)[keyword["Keyword"]] = keyword
        return {
            "OriginationIdentityArn": _identity_arn(identity),
            "OriginationIdentity": params["OriginationIdentity"],
            **keyword,
        }


# -- configuration sets and event destinations ---------------------------------------------------
def create_configuration_set(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        name = params["ConfigurationSetName"]
        if name in acct.configuration_sets:
            raise _conflict(
                "RESOURCE_ALREADY_EXISTS", f"Configuration set {name} already exists", "configuration-set", name
            )
        acct.configuration_sets[name] = {
            "ConfigurationSetArn": acct.arn("configuration-set", name),
            "ConfigurationSetName": name,
            "EventDestinations": [],
            "Tags": params.get("Tags", []),
            "CreatedTimestamp": now(),
        }
        return acct.configuration_sets[name]


def _configuration_set(acct: Account, key: str) -> dict[str, Any]:
    for config in acct.configuration_sets.values():
        if key in (config["ConfigurationSetName"], config["ConfigurationSetArn"]):
            return config
    raise _not_found("configuration-set", key)


def describe_configuration_sets(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        names = params.get("ConfigurationSetNames")
        sets = [_configuration_set(acct, n) for n in names] if names else list(acct.configuration_sets.values())
        return {"ConfigurationSets": sets}


def delete_configuration_set(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        config = _configuration_set(acct, params["ConfigurationSetName"])
        return acct.configuration_sets.pop(config["ConfigurationSetName"])


def create_event_destination(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        config = _configuration_set(acct, params["ConfigurationSetName"])
        name = params["EventDestinationName"]
        if any(d["EventDestinationName"] == name for d in config["EventDestinations"]):
            raise _conflict(
                "RESOURCE_ALREADY_EXISTS", f"Event destination {name} already exists", "event-destination", name
            )
        targets = [
            k for k in ("CloudWatchLogsDestination", "KinesisFirehoseDestination", "SnsDestination") if k in params
        ]
        if len(targets) != 1:
            raise _invalid(
                "INVALID_PARAMETER",
                "Give exactly one of CloudWatchLogsDestination, KinesisFirehoseDestination, SnsDestination",
            )
        destination = {
            "EventDestinationName": name,
            "Enabled": True,
            "MatchingEventTypes": params["MatchingEventTypes"],
        }
        destination[targets[0]] = params[targets[0]]
        config["EventDestinations"].append(destination)
        return {**_config_ref(config), "EventDestination": destination}


def _config_ref(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ConfigurationSetArn": config["ConfigurationSetArn"],
        "ConfigurationSetName": config["ConfigurationSetName"],
    }


def _event_destination(config: dict[str, Any], name: str) -> dict[str, Any]:
    for destination in config["EventDestinations"]:
        if destination["EventDestinationName"] == name:
            return destination
    raise _not_found("event-destination", name)


def update_event_destination(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        config = _configuration_set(acct, params["ConfigurationSetName"])
        destination = _event_destination(config, params["EventDestinationName"])
        for name in (
            "Enabled",
            "MatchingEventTypes",
            "CloudWatchLogsDestination",
            "KinesisFirehoseDestination",
            "SnsDestination",
        ):
            if name in params:
                destination[name] = params[name]
        return {**_config_ref(config), "EventDestination": destination}


def delete_event_destination(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        config = _configuration_set(acct, params["ConfigurationSetName"])
        destination = _event_destination(config, params["EventDestinationName"])
        config["EventDestinations"].remove(destination)
        return {**_config_ref(config), "EventDestination": destination}


# -- sending -------------------------------------------------------------------------------------
def send_text_message(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    return _send(params, ctx, channel="TEXT")


def send_voice_message(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    return _send(params, ctx, channel="VOICE")


def _send(params: dict[str, Any], ctx: RequestContext, *, channel: str) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        destination = params["DestinationPhoneNumber"]
        config = (
            _configuration_set(acct, params["ConfigurationSetName"]) if params.get("ConfigurationSetName") else None
        )
        identity = _origination(acct, params.get("OriginationIdentity"), destination)
        sender = _sender(acct, identity, "SMS" if channel == "TEXT" else "VOICE", destination)
        list_name = identity.get("OptOutListName", DEFAULT_OPT_OUT_LIST)
        if destination in acct.opt_out_list(list_name)["numbers"]:
            raise _conflict(
                "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                f"The destination phone number {destination} is on the opt-out list {list_name}",
                "opted-out-number",
                destination,
            )
        if params.get("DryRun"):
            return {"MessageId": str(uuid.uuid4())}
        record = _record(acct, channel, params, sender, destination, config)
    _publish_events(acct, record, config)
    return {"MessageId": record["messageId"]}


def _origination(acct: Account, key: str | None, destination: str) -> dict[str, Any]:
    if key:
        return _identity(acct, key)
    found = [*acct.pools.values(), *acct.phone_numbers.values(), *acct.sender_ids.values()]
    if not found:
        raise _conflict(
            "NO_ORIGINATION_IDENTITIES_FOUND",
            f"No origination identity can send to {destination}",
            "account",
            acct.account,
        )
    return found[0]


def _record(
    acct: Account,
    channel: str,
    params: dict[str, Any],
    sender: dict[str, Any],
    destination: str,
    config: dict[str, Any] | None,
) -> dict[str, Any]:
    record = {
        "channel": channel,
        "messageId": str(uuid.uuid4()),
        "originationIdentity": sender.get("PhoneNumber") or sender.get("SenderId"),
        "destinationPhoneNumber": destination,
        "messageBody": params.get("MessageBody"),
        "messageType": params.get("MessageType") or sender.get("MessageType") or "TRANSACTIONAL",
        "configurationSetName": config["ConfigurationSetName"] if config else None,
        "context": params.get("Context") or {},
        "sentAt": now().isoformat(),
        "requestedAt": now(),
    }
    if channel == "TEXT":
        record["keyword"] = params.get("Keyword")
    else:
        record["messageBodyTextType"] = params.get("MessageBodyTextType", "TEXT")
        record["voiceId"] = params.get("VoiceId")
    record["events"] = _event_flow(acct, channel, destination)
    acct.messages.append(record)
    return record


def _event_flow(acct: Account, channel: str, destination: str) -> list[str]:
    flow = list(TEXT_FLOW if channel == "TEXT" else VOICE_FLOW)
    outcome = acct.outcomes.get(destination)
    if outcome and outcome.startswith(channel + "_"):
        flow = [*flow[:1], outcome] if outcome not in flow else flow[: flow.index(outcome) + 1]
    return flow


def simulate_outcome(account_id: str, region: str, destination: str, event_type: str | None) -> None:
    """Make every later send to `destination` end with `event_type` (None: delivered, as by default)."""
    from infra.local.messaging.protocol import service_model

    known = service_model(SERVICE).shape_for("EventType").enum  # type: ignore[attr-defined]
    if event_type is not None and (event_type not in known or not event_type.startswith(("TEXT_", "VOICE_"))):
        raise ValueError(f"{event_type!r} is not a TEXT_ or VOICE_ event type of End User Messaging SMS")
    with _lock:
        acct = account(account_id, region)
        if event_type is None:
            acct.outcomes.pop(destination, None)
        else:
            acct.outcomes[destination] = event_type


def _publish_events(acct: Account, record: dict[str, Any], config: dict[str, Any] | None) -> None:
    if config is None:
        return
    flow = record["events"]
    for index, event_type in enumerate(flow):
        event = event_json(record, event_type, is_final=index == len(flow) - 1)
        for destination in config["EventDestinations"]:
            if destination["Enabled"] and _wanted(event_type, destination["MatchingEventTypes"]):
                _deliver(destination, event, record["messageId"])


def _wanted(event_type: str, matching: list[str]) -> bool:
    return "ALL" in matching or event_type in matching or f"{event_type.split('_', 1)[0]}_ALL" in matching


def event_json(record: dict[str, Any], event_type: str, *, is_final: bool) -> dict[str, Any]:
    """An SMS or voice event as End User Messaging SMS publishes it (the documented example's fields)."""
    import phonenumbers

    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(record["destinationPhoneNumber"]))
    except phonenumbers.NumberParseException:
        country = None
    status = event_type.split("_", 1)[1]
    event = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": epoch_millis(now()),
        "isFinal": is_final,
        "originationPhoneNumber": record["originationIdentity"],
        "destinationPhoneNumber": record["destinationPhoneNumber"],
        "isoCountryCode": country,
        "messageId": record["messageId"],
        "messageRequestTimestamp": epoch_millis(record["requestedAt"]),
        "messageStatus": status,
        "messageStatusDescription": STATUS_DESCRIPTIONS.get(status, status.replace("_", " ").capitalize()),
        "context": record["context"],
    }
    if record["channel"] == "TEXT":
        body = record["messageBody"] or ""
        gsm = all(ord(c) < 128 for c in body)
        event |= {
            "messageEncoding": "GSM" if gsm else "UCS2",
            "messageType": record["messageType"],
            "totalMessageParts": max(1, -(-len(body) // (153 if gsm else 67)))
            if len(body) > (160 if gsm else 70)
            else 1,
            "totalMessagePrice": 0.0,
            "totalCarrierFee": 0.0,
        }
    else:
        event |= {"callDurationInSeconds": 0, "totalDurationRounded": 0, "totalPrice": 0.0}
    return {k: v for k, v in event.items() if v is not None}


def _deliver(destination: dict[str, Any], event: dict[str, Any], message_id: str) -> None:
    body = json.dumps(event)
    try:
        if "SnsDestination" in destination:
            destinations.publish_to_topic(destination["SnsDestination"]["TopicArn"], body)
        elif "KinesisFirehoseDestination" in destination:
            destinations.put_to_firehose(
                destination["KinesisFirehoseDestination"]["DeliveryStreamArn"], body.encode() + b"\n"
            )
        elif "CloudWatchLogsDestination" in destination:
            destinations.put_to_log_group(
                destination["CloudWatchLogsDestination"]["LogGroupArn"], body, event["eventTimestamp"], message_id
            )
    except destinations.DestinationMissing as exc:
        # AWS delivers events asynchronously: a missing destination loses them, it does not fail the send.
        import logging

        logging.getLogger(__name__).warning("End User Messaging SMS event destination: %s", exc)


# -- inbound -------------------------------------------------------------------------------------
def receive(account_id: str, region: str, *, sender: str, to: str, body: str) -> dict[str, Any]:
    """A message from `sender` to the origination number `to`, handled as AWS handles it.

    The inbound JSON is published to the number's (or its pool's) two-way topic; a keyword is acted
    on first. Returns the inbound JSON with what was done (`optedOut`, `autoReply`).
    """
    with _lock:
        acct = account(account_id, region)
        number = next((n for n in acct.phone_numbers.values() if n["PhoneNumber"] == to), None)
        if number is None:
            raise LookupError(f"{to} is not a phone number of this account (RequestPhoneNumber gives one)")
        pool = acct.pools.get(number.get("PoolId", ""))
        settings = pool if pool and pool.get("TwoWayEnabled") else number
        if not settings.get("TwoWayEnabled") or not settings.get("TwoWayChannelArn"):
            raise LookupError(f"{to} has no two-way channel: UpdatePhoneNumber with TwoWayEnabled and TwoWayChannelArn")
        first_word = body.strip().split(maxsplit=1)[0].upper() if body.strip() else ""
        keywords = _keywords(acct, number)
        keyword = keywords.get(first_word)
        if keyword is None and first_word in OPT_OUT_KEYWORDS:
            keyword = {**keywords["STOP"], "Keyword": first_word}
        previous = next(
            (
                m["messageId"]
                for m in reversed(acct.messages)
                if m["originationIdentity"] == to and m["destinationPhoneNumber"] == sender
            ),
            None,
        )
        inbound: dict[str, Any] = {
            "originationNumber": sender,
            "destinationNumber": to,
            "messageKeyword": keyword["Keyword"] if keyword else None,
            "messageBody": body,
            "inboundMessageId": str(uuid.uuid4()),
            "previousPublishedMessageId": previous,
        }
        inbound = {k: v for k, v in inbound.items() if v is not None}
        outcome: dict[str, Any] = {"optedOut": False, "optedIn": False, "autoReply": None}
        self_managed = bool(settings.get("SelfManagedOptOutsEnabled"))
        if keyword and not self_managed:
            list_name = settings.get("OptOutListName", DEFAULT_OPT_OUT_LIST)
            if keyword["KeywordAction"] == "OPT_OUT":
                _opt_out(acct, list_name, sender, end_user=True)
                outcome["optedOut"] = True
            elif keyword["KeywordAction"] == "OPT_IN":
                acct.opt_out_list(list_name)["numbers"].pop(sender, None)
                outcome["optedIn"] = True
            reply = _record(
                acct,
                "TEXT",
                {"MessageBody": keyword["KeywordMessage"], "MessageType": "TRANSACTIONAL"},
                number,
                sender,
                None,
            )
            reply["autoReplyTo"] = inbound["inboundMessageId"]
            outcome["autoReply"] = reply["messageId"]
        acct.inbound.append({**inbound, **outcome, "receivedAt": now().isoformat()})
        topic = settings["TwoWayChannelArn"]
    destinations.publish_to_topic(topic, json.dumps(inbound))
    return {**inbound, **outcome}


HANDLERS: dict[str, Handler] = {
    "RequestPhoneNumber": request_phone_number,
    "DescribePhoneNumbers": describe_phone_numbers,
    "UpdatePhoneNumber": update_phone_number,
    "ReleasePhoneNumber": release_phone_number,
    "RequestSenderId": request_sender_id,
    "DescribeSenderIds": describe_sender_ids,
    "CreatePool": create_pool,
    "DescribePools": describe_pools,
    "UpdatePool": update_pool,
    "DeletePool": delete_pool,
    "CreateOptOutList": create_opt_out_list,
    "DescribeOptOutLists": describe_opt_out_lists,
    "DeleteOptOutList": delete_opt_out_list,
    "PutOptedOutNumber": put_opted_out_number,
    "DescribeOptedOutNumbers": describe_opted_out_numbers,
    "DeleteOptedOutNumber": delete_opted_out_number,
    "DescribeKeywords": describe_keywords,
    "PutKeyword": put_keyword,
    "CreateConfigurationSet": create_configuration_set,
    "DescribeConfigurationSets": describe_configuration_sets,
    "DeleteConfigurationSet": delete_configuration_set,
    "CreateEventDestination": create_event_destination,
    "UpdateEventDestination": update_event_destination,
    "DeleteEventDestination": delete_event_destination,
    "SendTextMessage": send_text_message,
    "SendVoiceMessage": send_voice_message,
}
