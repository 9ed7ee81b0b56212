"""Handler methods of moto's `SESV2Response` for the operations the local SES serves (`infra.local.ses`).

Each takes moto's response object (`self`), reads the REST request as botocore sends it and answers
SES v2's JSON. moto's own send handler is replaced; its other operations are kept.
"""

from __future__ import annotations

import json
from typing import Any

from infra.local import ses_api, ses_events, ses_mime
from infra.local.ses import (
    AlreadyExistsException,
    BadRequestException,
    MessageRejected,
    NotFoundException,
    SesV2Error,
    bare_address,
    mailbox,
)


def _core(self: Any) -> Any:
    return self.sesv2_backend.core_backend


def _body(self: Any) -> dict[str, Any]:
    return json.loads(self.body) if self.body else {}


def _box(self: Any) -> Any:
    return mailbox(self.current_account, self.region)


# -- sending ----------------------------------------------------------------------------------------
def send_email(self: Any) -> str:
    params = _body(self)
    mail = ses_api.send(
        _core(self), params, params.get("Content") or {}, params.get("Destination") or {}, operation="SendEmail"
    )
    return json.dumps({"MessageId": mail.message_id})


def send_bulk_email(self: Any) -> str:
    params = _body(self)
    default = params.get("DefaultContent") or {}
    if "Template" not in default:
        raise BadRequestException("DefaultContent must hold a Template")
    results = []
    for entry in params.get("BulkEmailEntries") or []:
        template = dict(default["Template"])
        replacement = (entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}
        if replacement.get("ReplacementTemplateData"):
            template["TemplateData"] = replacement["ReplacementTemplateData"]
        if entry.get("ReplacementHeaders"):
            template["Headers"] = list(template.get("Headers") or []) + list(entry["ReplacementHeaders"])
        tags = {t["Name"]: t["Value"] for t in params.get("DefaultEmailTags") or []}
        tags.update({t["Name"]: t["Value"] for t in entry.get("ReplacementTags") or []})
        one = {**params, "EmailTags": [{"Name": k, "Value": v} for k, v in tags.items()]}
        try:
            mail = ses_api.send(
                _core(self), one, {"Template": template}, entry.get("Destination") or {}, operation="SendBulkEmail"
            )
        except NotFoundException:
            raise
        except MessageRejected as error:
            results.append({"Status": "MESSAGE_REJECTED", "Error": error.message})
            continue
        except SesV2Error as error:
            status = {
                "TooManyRequestsException": "SENDING_QUOTA_EXCEEDED",
                "LimitExceededException": "SENDING_QUOTA_EXCEEDED",
            }
            results.append({"Status": status.get(error.error_type, "FAILED"), "Error": error.message})
            continue
        results.append({"Status": "SUCCESS", "MessageId": mail.message_id})
    return json.dumps({"BulkEmailEntryResults": results})


# -- templates --------------------------------------------------------------------------------------
def _v1(name: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "template_name": name,
        "subject_part": content.get("Subject"),
        "text_part": content.get("Text"),
        "html_part": content.get("Html"),
    }


def create_email_template(self: Any) -> str:
    params = _body(self)
    name = params["TemplateName"]
    if name in _core(self).templates:
        raise AlreadyExistsException(f"Template {name} already exists.")
    _core(self).templates[name] = _v1(name, params.get("TemplateContent") or {})
    return "{}"


def update_email_template(self: Any) -> str:
    name = ses_api.path_param(self, "TemplateName")
    _template(self, name)
    _core(self).templates[name] = _v1(name, _body(self).get("TemplateContent") or {})
    return "{}"


def _template(self: Any, name: str) -> dict[str, Any]:
    stored = _core(self).templates.get(name)
    if stored is None:
        raise NotFoundException(f"Template {name} does not exist.")
    return ses_api._v2_template(stored)


def get_email_template(self: Any) -> str:
    return json.dumps(_template(self, ses_api.path_param(self, "TemplateName")))


def delete_email_template(self: Any) -> str:
    name = ses_api.path_param(self, "TemplateName")
    _template(self, name)
    del _core(self).templates[name]
    return "{}"


def list_email_templates(self: Any) -> str:
    names = sorted(_core(self).templates)
    return json.dumps({"TemplatesMetadata": [{"TemplateName": n} for n in names]})


def test_render_email_template(self: Any) -> str:
    name = ses_api.path_param(self, "TemplateName")
    content = {"Template": {"TemplateName": name, "TemplateData": _body(self).get("TemplateData") or "{}"}}
    _template(self, name)
    try:
        subject, text, html_body, _, _, _ = ses_api._content(_core(self), content)
    except ses_mime.RenderingError as error:
        raise BadRequestException(str(error)) from None
    message = ses_mime.build_message(
        from_address="local@example.com",
        to=[],
        cc=[],
        reply_to=[],
        subject=subject,
        text=text,
        html_body=html_body,
        headers=[],
        message_id=ses_events.message_id(ses_events.now()),
        domain="local",
        sent_at=ses_events.now(),
    )
    del message["From"]
    return json.dumps({"RenderedTemplate": message.as_string()})


# -- configuration set event destinations -----------------------------------------------------------
def _set_destinations(self: Any, name: str) -> dict[str, dict[str, Any]]:
    if name not in _core(self).config_sets:
        raise NotFoundException(f"Configuration set <{name}> does not exist.")
    return _box(self).destinations.setdefault(name, {})


def create_configuration_set_event_destination(self: Any) -> str:
    params = _body(self)
    destinations = _set_destinations(self, ses_api.path_param(self, "ConfigurationSetName"))
    name = params["EventDestinationName"]
    if name in destinations:
        raise AlreadyExistsException(f"Event destination {name} already exists.")
    destination = ses_api.validated_destination(dict(params["EventDestination"]))
    destinations[name] = {"Name": name, "Enabled": destination.pop("Enabled", False), **destination}
    return "{}"


def update_configuration_set_event_destination(self: Any) -> str:
    destinations = _set_destinations(self, ses_api.path_param(self, "ConfigurationSetName"))
    name = ses_api.path_param(self, "EventDestinationName")
    if name not in destinations:
        raise NotFoundException(f"Event destination {name} does not exist.")
    destination = ses_api.validated_destination(dict(_body(self)["EventDestination"]))
    destinations[name] = {"Name": name, "Enabled": destination.pop("Enabled", False), **destination}
    return "{}"


def get_configuration_set_event_destinations(self: Any) -> str:
    destinations = _set_destinations(self, ses_api.path_param(self, "ConfigurationSetName"))
    return json.dumps({"EventDestinations": list(destinations.values())})


def delete_configuration_set_event_destination(self: Any) -> str:
    destinations = _set_destinations(self, ses_api.path_param(self, "ConfigurationSetName"))
    name = ses_api.path_param(self, "EventDestinationName")
    if destinations.pop(name, None) is None:
        raise NotFoundException(f"Event destination {name} does not exist.")
    return "{}"


def create_configuration_set(self: Any) -> str:
    """moto's, forgetting the event destinations a deleted set of the same name had."""
    name = self._get_param("ConfigurationSetName")
    if name in _core(self).config_sets:
        raise AlreadyExistsException(f"Configuration set <{name}> already exists.")
    _box(self).destinations.pop(name, None)
    return _moto_create_configuration_set(self)


def put_configuration_set_suppression_options(self: Any) -> str:
    name = ses_api.path_param(self, "ConfigurationSetName")
    _set_destinations(self, name)
    reasons = _body(self).get("SuppressedReasons")
    _core(self).config_sets[name].suppression_options = {} if reasons is None else {"SuppressedReasons": reasons}
    return "{}"


# -- account: suppression list and quota ------------------------------------------------------------
def put_suppressed_destination(self: Any) -> str:
    params = _body(self)
    if params.get("Reason") not in {"BOUNCE", "COMPLAINT"}:
        raise BadRequestException("Reason must be BOUNCE or COMPLAINT")
    _box(self).suppress(params["EmailAddress"], params["Reason"])
    return "{}"


def _suppressed(self: Any) -> dict[str, Any]:
    address = bare_address(ses_api.path_param(self, "EmailAddress"))
    found = _box(self).suppressed.get(address)
    if found is None:
        raise NotFoundException(f"Email address {address} does not exist on your suppression list.")
    return found


def _entry(found: dict[str, Any]) -> dict[str, Any]:
    return {**found, "LastUpdateTime": found["LastUpdateTime"].timestamp()}


def get_suppressed_destination(self: Any) -> str:
    return json.dumps({"SuppressedDestination": _entry(_suppressed(self))})


def delete_suppressed_destination(self: Any) -> str:
    found = _suppressed(self)
    del _box(self).suppressed[found["EmailAddress"]]
    return "{}"


def list_suppressed_destinations(self: Any) -> str:
    reasons = self.querystring.get("Reason") or []
    entries = [_entry(f) for f in _box(self).suppressed.values() if not reasons or f["Reason"] in reasons]
    return json.dumps({"SuppressedDestinationSummaries": entries})


def put_account_suppression_attributes(self: Any) -> str:
    reasons = _body(self).get("SuppressedReasons") or []
    if set(reasons) - {"BOUNCE", "COMPLAINT"}:
        raise BadRequestException("SuppressedReasons may only hold BOUNCE and COMPLAINT")
    _box(self).suppressed_reasons = list(reasons)
    return "{}"


def get_account(self: Any) -> str:
    box = _box(self)
    with box.lock:
        sent = box.sent_last_24_hours(ses_events.now())
    return json.dumps(
        {
            "DedicatedIpAutoWarmupEnabled": False,
            "EnforcementStatus": "HEALTHY",
            "ProductionAccessEnabled": True,
            "SendingEnabled": True,
            "SendQuota": {
                "Max24HourSend": box.quota.max_24_hour_send,
                "MaxSendRate": box.quota.max_send_rate,
                "SentLast24Hours": float(sent),
            },
            "SuppressionAttributes": {"SuppressedReasons": box.suppressed_reasons},
        }
    )


_moto_create_configuration_set: Any = None

OPERATIONS = {
    "send_email": send_email,
    "send_bulk_email": send_bulk_email,
    "create_email_template": create_email_template,
    "update_email_template": update_email_template,
    "get_email_template": get_email_template,
    "delete_email_template": delete_email_template,
    "list_email_templates": list_email_templates,
    "test_render_email_template": test_render_email_template,
    "create_configuration_set": create_configuration_set,
    "create_configuration_set_event_destination": create_configuration_set_event_destination,
    "update_configuration_set_event_destination": update_configuration_set_event_destination,
    "get_configuration_set_event_destinations": get_configuration_set_event_destinations,
    "delete_configuration_set_event_destination": delete_configuration_set_event_destination,
    "put_configuration_set_suppression_options": put_configuration_set_suppression_options,
    "put_suppressed_destination": put_suppressed_destination,
    "get_suppressed_destination": get_suppressed_destination,
    "delete_suppressed_destination": delete_suppressed_destination,
    "list_suppressed_destinations": list_suppressed_destinations,
    "put_account_suppression_attributes": put_account_suppression_attributes,
    "get_account": get_account,
}


def keep_moto_operations() -> None:
    """Remember moto's own handlers that these wrap (before they are replaced)."""
    global _moto_create_configuration_set
    from moto.sesv2.responses import SESV2Response

    if _moto_create_configuration_set is None:
        _moto_create_configuration_set = SESV2Response.create_configuration_set
