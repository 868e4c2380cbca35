"""OpenStack API errors and resource states (kind ``openstack-error``).

What it reads, in any mix:

- API error bodies: nova/cinder ``{"<class>": {"message", "code"}}``
  (``badRequest``, ``forbidden``, ``itemNotFound``, ``overLimit``, ``conflict``,
  ``computeFault``), Neutron ``{"NeutronError": {"type", "message", "detail"}}``,
  Keystone ``{"error": {"code", "title", "message"}}``, Placement ``{"errors":
  [{"status", "title", "detail", "request_id"}]}``.
- HTML error pages: a front-end proxy's (nginx's ``<center>nginx/1.19.0</center>``,
  Apache's, HAProxy's) and the services' own WebOb pages (Glance's 413).
- Client output: ``<message> (HTTP 403) (Request-ID: req-...)``, openstacksdk's
  ``HttpException: 413: Client Error for url: ...``, novaclient's ``ERROR
  (Forbidden): ...``, ``Unable to establish connection to <url>: ...``, ``Missing
  value auth-url required for auth plugin password``.
- Resource states: ``openstack image show``/``server show`` tables and their
  ``-f json``, Glance and Nova JSON (``{"server": {...}}``), image and server lists.

What it judges (layer ``cloud``); every match counts, so a log with several
errors gets every code:

- ``proxy_body_limit``: HTTP 413 without a quota message (case C19: nginx's 413
  page in front of Horizon). ``details.origin`` names the proxy where the page does.
- ``quota_exceeded``: "Quota exceeded ...", Neutron's ``OverQuota``, nova's
  ``overLimit``, "Maximum number of ... exceeded", Glance's storage quota and its
  ``image_size_cap`` 413 ("larger than N bytes"); a deployment's size cap is read
  as a quota: a limit that a retry does not lift.
- ``scheduler_no_capacity``: "No valid host was found" (it replaces
  ``server_error_state`` for the server it put in ERROR).
- ``credentials_missing`` (HARNESS-ERROR): 401, "requires authentication",
  missing auth options: absent *or wrong* credentials are the harness's input.
- ``rbac_forbidden``: a 403 that is not a quota (a policy refusal): the
  credentials lack rights, the same meaning the code has for Kubernetes.
- ``api_unreachable``: connection refused/timed out/unresolvable, 502/503/504.
- ``image_not_active``: an image whose status is not ``active`` (queued, saving,
  killed, deactivated, ...): a capture is judged as the final state.
- ``server_error_state``: a server whose status is not ``ACTIVE``;
  ``details.fault`` carries the fault message.
- ``check_failed``: any other error status or body (404 ``itemNotFound``, 409,
  400 ...) with its class, status and message in ``details``.

``details`` also carries ``http_status`` and ``request_id`` (the first seen) for
the operator to look up in the service's log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._json_in_text import json_values
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "openstack-error"

_REQUEST_ID = re.compile(
    r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_REASON_PHRASE = (
    r"(?:Bad Request|Unauthorized|Forbidden|Not Found|Conflict|Request Entity Too "
    r"Large|Payload Too Large|Internal Server Error|Bad Gateway|Service Unavailable"
    r"|Gateway Timeout)"
)
# "(HTTP 403)", "HttpException: 413:", "<title>413 ...", "HTTP/1.1 503", and the
# "413 Request Entity Too Large" first line of a WebOb plain-text error.
_STATUS = re.compile(
    r"\(HTTP (\d{3})\)|\b\w*Exception: (\d{3}):|<title>\s*(\d{3})\b"
    rf"|^HTTP/[\d.]+ (\d{{3}})|^(\d{{3}}) {_REASON_PHRASE}\s*$",
    re.M,
)
_CLI_ERROR = re.compile(
    r"\(HTTP \d{3}\)|\b\w+Exception: \d{3}: |^ERROR \(\w+\): |Request-ID: req-", re.M
)
_HTML_ERROR = re.compile(
    rf"<title>\s*\d{{3}} [^<]*</title>|<h1>\s*\d{{3}} |^\d{{3}} {_REASON_PHRASE}\s*$",
    re.I | re.M,
)
_TOO_LARGE = re.compile(r"Request Entity Too Large|Payload Too Large", re.I)
_PROXY = re.compile(
    r"<center>\s*((?:nginx|openresty)[^<]*)</center>|(Apache(?:/[\d.]+)?) Server at"
    r"|(haproxy)|(envoy)",
    re.I,
)
_QUOTA = re.compile(
    r"Quota exceeded[^\n\"'}]*|OverQuota|overLimit|exceeds? the (?:storage )?quota"
    r"|Maximum number of [\w ]{1,80}? exceeded|larger than \d+ bytes|storage quota",
    re.I,
)
_SPELLED_QUOTA = re.compile(r"Quota exceeded[^\n\"}]*", re.I)
_NO_HOST = re.compile(r"No valid host was found[^\n\"'}]*", re.I)
_AUTH = re.compile(
    r"requires authentication|Missing value [\w-]+ required for auth plugin"
    r"|Missing parameter\(s\)|The request you have made requires authentication"
    r"|Authentication failed|Could not find versioned identity endpoints",
    re.I,
)
_POLICY = re.compile(
    r"Policy doesn't allow|is not authorized to perform|"
    r"not authorized to perform the requested action",
    re.I,
)
# Connection-level failures only: a fault that says a build "timed out waiting for"
# something is the server's state, not an unreachable API.
_UNREACHABLE = re.compile(
    r"Unable to establish connection to (\S+?):\s|Failed to discover available identity"
    r" versions when contacting (\S+?)\.?\s|Connection (?:refused|timed out|reset)"
    r"|(?:ConnectTimeout|ConnectFailure|ConnectionError): Request to (https?://\S+)"
    r"|Read timed out|ConnectTimeout|No route to host|Name or service not known"
    r"|Temporary failure in name resolution",
    re.I,
)
_UNAVAILABLE = {502, 503, 504}
_QUOTE_SCAN_CHARS = 4096  # how much of each line is searched for evidence to quote
# Lines quoted as evidence: whatever any rule above decides on, and status codes.
_DECISIVE = re.compile(
    "|".join(
        p.pattern
        for p in (_CLI_ERROR, _HTML_ERROR, _TOO_LARGE, _NO_HOST, _QUOTA, _AUTH)
    )
    + "|"
    + "|".join(p.pattern for p in (_POLICY, _UNREACHABLE))
    + r'|"(?:code|status)":\s*"?\d{3}\b|\bException: ',
    re.I | re.M,
)


def _statuses(text: str) -> list[int]:
    found = [int(next(g for g in m.groups() if g)) for m in _STATUS.finditer(text)]
    return [s for s in found if 100 <= s <= 599]


# --- JSON bodies and resources -----------------------------------------------


def _error_body(obj: Any) -> tuple[str, int | None, str] | None:
    """(class, status, message) of an API error body, or None."""
    if not isinstance(obj, dict) or len(obj) != 1:
        return None
    cls, body = next(iter(obj.items()))
    if cls == "errors" and isinstance(body, list) and body:
        first = body[0] if isinstance(body[0], dict) else {}
        return (
            str(first.get("title", cls)),
            _code(first.get("status")),
            str(first.get("detail", "")),
        )
    if not isinstance(body, dict) or "message" not in body:
        return None
    label = f"{cls}/{body['type']}" if "type" in body else cls
    return label, _code(body.get("code")), str(body["message"])


def _code(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _resource(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """("image"|"server", fields) for one resource's fields, or None."""
    keys = {k.lower() for k in obj}
    if "status" not in keys:
        return None
    if keys & {"disk_format", "container_format"} or keys == {"id", "name", "status"}:
        return "image", obj
    if keys & {"flavor", "os-ext-sts:vm_state", "hostid", "addresses", "networks"}:
        return "server", obj
    return None


def _json_resources(values: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for value in values:
        for obj in value if isinstance(value, list) else [value]:
            if not isinstance(obj, dict):
                continue
            inner = obj.get("server") or obj.get("image")
            if isinstance(inner, dict):
                obj = inner
            if res := _resource(obj):
                found.append(res)
    return found


def _table_resources(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Resources in the CLI's boxed tables: Field/Value tables and lists."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in re.split(r"\n(?=\+[-+]+\+\s*\n\|\s*(?:Field|ID)\s*\|)", text):
        rows = [line.strip() for line in block.splitlines() if line.startswith("|")]
        cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
        if not cells:
            continue
        if cells[0][:2] == ["Field", "Value"]:
            fields = {c[0]: c[1] for c in cells[1:] if len(c) == 2 and c[0]}
            found += [res] if (res := _resource(fields)) else []
        else:
            rows_ = (dict(zip(cells[0], c, strict=False)) for c in cells[1:])
            found += filter(None, map(_resource, rows_))
    return found


# --- judging ------------------------------------------------------------------


def _field(obj: dict[str, Any], name: str) -> Any:
    return next((v for k, v in obj.items() if k.lower() == name), None)


def _judge_resources(text: str, values: list[Any], f: Finding) -> bool:
    resources = _json_resources(values) + _table_resources(text)
    no_host = _NO_HOST.search(text)  # scheduler_no_capacity names the cause
    for kind, obj in resources:
        status = str(_field(obj, "status") or "").strip()
        name = _field(obj, "name") or _field(obj, "id") or "?"
        f.evidence.append(_row_line(text, status) or f"{kind} {name}: status {status}")
        if kind == "image" and status.lower() != "active":
            f.add(
                "image_not_active",
                f"image {name} is {status}, not active: wait for active after the "
                "upload, and re-upload through the Glance API if it was killed",
                status=status,
            )
        elif kind == "server" and status.upper() != "ACTIVE" and no_host is None:
            f.details.update(status=status, fault=_fault(_field(obj, "fault")))
            f.add("server_error_state", f"server {name} is {status}, not ACTIVE")
    return bool(resources)


def _row_line(text: str, status: str) -> str | None:
    """The printed line that shows a resource's status, if there is one."""
    if not status.strip():
        return None  # "\s*\s*" would scan a long run of spaces once per split
    shown = re.compile(
        rf'\|\s*{re.escape(status)}\s*\|\s*$|"status":\s*"{re.escape(status)}"', re.I
    )
    return next((ln.strip() for ln in text.splitlines() if shown.search(ln)), None)


def _fault(fault: Any) -> str:
    if isinstance(fault, dict):
        return str(fault.get("message", fault))
    text = str(fault or "")
    m = re.search(r"'message': '([^']*)'", text)
    return m.group(1) if m else text


def _judge_413(text: str, statuses: list[int], f: Finding) -> None:
    if 413 not in statuses and not _TOO_LARGE.search(text):
        return
    if _QUOTA.search(text):
        return  # the quota rule names it
    proxy = _PROXY.search(text)
    origin = next((g for g in proxy.groups() if g), None) if proxy else None
    f.add(
        "proxy_body_limit",
        f"{origin or 'a front end'} refused the request body (413) before it reached "
        "the service: upload images through the Glance API or `openstack image "
        "create` (then wait for status active), or raise the proxy's body limit "
        "(nginx client_max_body_size)",
        origin=origin,
    )


def _judge_messages(text: str, statuses: list[int], f: Finding) -> None:
    if m := _NO_HOST.search(text):
        f.add(
            "scheduler_no_capacity",
            "no compute host could take the server: check the hypervisors' free "
            "RAM, disk and vCPUs against the flavor (`openstack hypervisor list "
            "--long`)",
            scheduler=m.group(0).strip(),
        )
    if m := _SPELLED_QUOTA.search(text) or _QUOTA.search(text):
        f.add(
            "quota_exceeded",
            "the project's quota (or the deployment's size cap) refuses this: raise "
            "it (`openstack quota set`) or free resources; retrying will not help",
            quota=m.group(0).split(" (HTTP")[0].strip(),
        )
    if 401 in statuses or _AUTH.search(text):
        f.add(
            "credentials_missing",
            "the cloud refused the credentials (a wrong or expired password, "
            "user, project or domain) or none were given: check the clouds.yaml "
            "entry the profile names (cloud.clouds_yaml, cloud.cloud)",
        )
    if (403 in statuses and not _QUOTA.search(text)) or _POLICY.search(text):
        f.add("rbac_forbidden", "the credentials lack a role this request needs")


def _judge_unreachable(text: str, statuses: list[int], f: Finding) -> None:
    matches = list(_UNREACHABLE.finditer(text))
    if not matches and not _UNAVAILABLE & set(statuses):
        return
    # The URL the client failed on beats the discovery URL it tried first.
    urls = sorted((g, i) for m in matches for i, g in enumerate(m.groups()) if g)
    url = min(urls, key=lambda u: u[1])[0] if urls else None
    f.add(
        "api_unreachable",
        f"the API {url or 'endpoint'} did not answer: is the service running and "
        "is the address in the profile right?",
        url=url,
    )


def _judge_other(values: list[Any], statuses: list[int], f: Finding) -> None:
    bodies = [b for v in values if (b := _error_body(v))]
    for cls, code, message in bodies[:1]:
        f.details.update(error=cls, message=message)
        if code:
            statuses.insert(0, code)
    if f.reasons:
        return
    if bodies or any(s >= 400 for s in statuses):
        f.add("check_failed", "the API refused the request: read details.message")


def _record(text: str, statuses: list[int], f: Finding) -> None:
    if statuses:
        f.details["http_status"] = statuses[0]
    ids = list(dict.fromkeys(_REQUEST_ID.findall(text)))
    if ids:
        f.details["request_id"] = ids[0]
        f.hint(f"look up {ids[0]} in the service's log for the cause")
    # Which lines to quote is found in each line's head: the rules above read the
    # whole text, and a case-blind search of a megabyte line per rule costs ~0.1 s.
    lines = [
        ln.strip()[:300]
        for ln in text.splitlines()
        if _DECISIVE.search(ln, 0, _QUOTE_SCAN_CHARS)
    ]
    f.evidence.extend(ln for ln in lines[:8] if ln not in f.evidence)


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    text = evidence.text
    values = json_values(text)[0]
    statuses = _statuses(text)
    f = Finding(layer="cloud", kind=NAME)
    judged = _judge_resources(text, values, f)
    _judge_413(text, statuses, f)
    _judge_messages(text, statuses, f)
    _judge_unreachable(text, statuses, f)
    _judge_other(values, statuses, f)
    _record(text, statuses, f)
    if not judged and not f.reasons:
        f.add("context_missing", f"{evidence.name}: no error or resource state found")
    log.debug("[%s] %s", evidence.name, f.summary())
    return f


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if _CLI_ERROR.search(text) or _NO_HOST.search(text):
        return 0.95
    if "{" in text or "[" in text:
        values = json_values(text)[0]
        if any(_error_body(v) for v in values) or _json_resources(values):
            return 0.9
    if _HTML_ERROR.search(text):
        return 0.75
    if _table_resources(text):
        return 0.8
    if re.search(
        r"Unable to establish connection to https?://|Missing value auth-url"
        # keystoneauth's own connection errors, as openstacksdk raises them
        r"|\b(?:ConnectTimeout|ConnectFailure|ConnectionError): Request to https?://",
        text,
    ):
        return 0.8
    return 0.0


register(
    Kind(
        name=NAME,
        layer="cloud",
        summary="OpenStack API error bodies, client errors, image and server states",
        detect=detect,
        judge=judge,
    )
)
