"""Admission webhooks: real AdmissionReview v1 calls, as kube-apiserver makes them.

For each write, every MutatingWebhookConfiguration's webhooks whose rules,
namespaceSelector and objectSelector match are called first (their JSONPatch
applied in turn), then every ValidatingWebhookConfiguration's. A webhook's
``clientConfig.service`` is resolved to a ready endpoint of that Service (the
address the pod serves on) and dialled over HTTPS, verifying the certificate
against ``caBundle`` for the name ``<service>.<namespace>.svc``. A call that
fails is an error under ``failurePolicy: Fail`` (the default) and skipped under
``Ignore``; the error texts follow kube-apiserver's ("failed calling webhook
... connect: connection refused", "no endpoints available for service",
"x509: certificate signed by unknown authority").
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import uuid

from meshstack.twin.kube.api import Api
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.patch import json_patch
from meshstack.twin.kube.resources import ResourceType
from meshstack.twin.kube.selectors import selector_from_dict
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)

_SKIP_GROUPS = {"admissionregistration.k8s.io"}


class WebhookCallError(Exception):
    """The webhook could not be called or answered nonsense."""


class Admission:
    def __init__(self, api: Api) -> None:
        self.api = api

    def __call__(
        self,
        op: str,
        rt: ResourceType,
        sub: str,
        obj: Obj | None,
        old: Obj | None,
        ns: str,
    ) -> Obj | None:
        if rt.group in _SKIP_GROUPS:
            return obj
        for hook in self._hooks(
            "mutatingwebhookconfigurations", op, rt, sub, obj, old, ns
        ):
            obj = self._call(hook, op, rt, sub, obj, old, ns, mutating=True)
        for hook in self._hooks(
            "validatingwebhookconfigurations", op, rt, sub, obj, old, ns
        ):
            self._call(hook, op, rt, sub, obj, old, ns, mutating=False)
        return obj

    def _hooks(
        self,
        plural: str,
        op: str,
        rt: ResourceType,
        sub: str,
        obj: Obj | None,
        old: Obj | None,
        ns: str,
    ) -> list[Obj]:
        configs = self.api.store.list(("admissionregistration.k8s.io", plural))[0]
        out = []
        for cfg in sorted(configs, key=lambda c: c["metadata"]["name"]):
            for hook in cfg.get("webhooks") or []:
                if self._matches(hook, op, rt, sub, obj or old or {}, ns):
                    out.append(hook)
        return out

    def _matches(
        self, hook: Obj, op: str, rt: ResourceType, sub: str, obj: Obj, ns: str
    ) -> bool:
        if not any(_rule_matches(r, op, rt, sub) for r in hook.get("rules") or []):
            return False
        labels = obj.get("metadata", {}).get("labels") or {}
        osel = selector_from_dict(hook.get("objectSelector"))
        if osel is not None and not osel(labels):
            return False
        nsel = selector_from_dict(hook.get("namespaceSelector"))
        if nsel is None or not rt.namespaced and rt.kind != "Namespace":
            return True
        if rt.kind == "Namespace":
            return nsel(labels)
        nso = self.api.store.get(("", "namespaces"), "", ns) or {"metadata": {}}
        return nsel(nso["metadata"].get("labels") or {})

    def _call(
        self,
        hook: Obj,
        op: str,
        rt: ResourceType,
        sub: str,
        obj: Obj | None,
        old: Obj | None,
        ns: str,
        mutating: bool,
    ) -> Obj | None:
        review = _review(op, rt, sub, obj, old, ns)
        try:
            answer = self._post(hook, review)
        except WebhookCallError as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning(
                    "webhook %s failed, ignored by failurePolicy: %s",
                    hook.get("name"),
                    exc,
                )
                return obj
            raise ApiError(
                "InternalError",
                "Internal error occurred: "
                f'failed calling webhook "{hook.get("name")}": {exc}',
                {
                    "causes": [
                        {
                            "message": "failed calling webhook "
                            f'"{hook.get("name")}": {exc}'
                        }
                    ]
                },
            ) from None
        resp = answer.get("response") or {}
        if not resp.get("allowed"):
            raise _denied(hook.get("name", ""), resp.get("status") or {})
        if mutating and resp.get("patch") and obj is not None:
            ops = json.loads(base64.b64decode(resp["patch"]))
            obj = json_patch(obj, ops)
            log.debug(
                "webhook %s patched %s/%s",
                hook.get("name"),
                ns,
                obj["metadata"].get("name"),
            )
        return obj

    def _post(self, hook: Obj, review: Obj) -> Obj:
        cc = hook.get("clientConfig") or {}
        timeout = float(hook.get("timeoutSeconds") or 10)
        if cc.get("url"):
            import urllib.parse

            u = urllib.parse.urlsplit(cc["url"])
            host, port, path, name = (
                u.hostname or "",
                u.port or 443,
                u.path or "/",
                u.hostname or "",
            )
            shown = cc["url"]
        else:
            svc = cc.get("service") or {}
            name = f"{svc.get('name')}.{svc.get('namespace')}.svc"
            path = svc.get("path") or "/"
            shown = (
                f"https://{name}:{svc.get('port', 443)}{path}?timeout={int(timeout)}s"
            )
            host, port = self._resolve(svc, shown)
        ca = base64.b64decode(cc["caBundle"]).decode() if cc.get("caBundle") else None
        return _https_post(host, port, name, path, review, ca, timeout, shown)

    def _resolve(self, svc: Obj, shown: str) -> tuple[str, int]:
        """A ready endpoint address and port for the webhook Service's port."""
        ns, name, want = (
            svc.get("namespace", ""),
            svc.get("name", ""),
            int(svc.get("port", 443)),
        )
        service = self.api.store.get(("", "services"), ns, name)
        if service is None:
            raise WebhookCallError(
                f'failed to call webhook: Post "{shown}": service "{name}" not found'
            )
        sport = next(
            (p for p in service["spec"].get("ports") or [] if p["port"] == want), None
        )
        ep = self.api.store.get(("", "endpoints"), ns, name) or {}
        for subset in ep.get("subsets") or []:
            ports = subset.get("ports") or []
            port = next(
                (p for p in ports if sport and p.get("name") == sport.get("name")),
                ports[0] if ports else None,
            )
            if subset.get("addresses") and port:
                return subset["addresses"][0]["ip"], int(port["port"])
        raise WebhookCallError(
            f'failed to call webhook: Post "{shown}": '
            f'no endpoints available for service "{name}"'
        )


def _rule_matches(rule: Obj, op: str, rt: ResourceType, sub: str) -> bool:
    ops = rule.get("operations") or []
    if "*" not in ops and op not in ops:
        return False
    if not _listed(rule.get("apiGroups"), rt.group) or not _listed(
        rule.get("apiVersions"), rt.version
    ):
        return False
    scope = rule.get("scope", "*")
    if (
        scope == "Namespaced"
        and not rt.namespaced
        or scope == "Cluster"
        and rt.namespaced
    ):
        return False
    wanted = f"{rt.plural}/{sub}" if sub else rt.plural
    for res in rule.get("resources") or []:
        base, _, rsub = res.partition("/")
        if res == wanted or res == "*/*" or (res == "*" and not sub):
            return True
        if base in (rt.plural, "*") and rsub == "*" and sub:
            return True
    return False


def _listed(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in values or value in values)  # type: ignore[operator]


def _review(
    op: str, rt: ResourceType, sub: str, obj: Obj | None, old: Obj | None, ns: str
) -> Obj:
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    name = (obj or old or {}).get("metadata", {}).get("name", "")
    request = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": name,
        "namespace": ns or None,
        "operation": op,
        "userInfo": {
            "username": "system:admin",
            "groups": ["system:masters", "system:authenticated"],
        },
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {
            "apiVersion": "meta.k8s.io/v1",
            "kind": f"{op.capitalize()}Options",
        },
    }
    if sub:
        request["subResource"] = sub
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }


def _denied(name: str, status: Obj) -> ApiError:
    code = max(int(status.get("code") or 400), 400)
    message = f'admission webhook "{name}" denied the request'
    message += (
        f": {status['message']}" if status.get("message") else " without explanation"
    )
    return ApiError(status.get("reason") or "BadRequest", message, code=code)


class _Conn(http.client.HTTPSConnection):
    """An HTTPS connection that dials one address but verifies another name."""

    def __init__(
        self,
        host: str,
        port: int,
        server_name: str,
        ctx: ssl.SSLContext,
        timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=ctx)
        self.server_name = server_name
        self.ctx = ctx

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.ctx.wrap_socket(sock, server_hostname=self.server_name)


def _https_post(
    host: str,
    port: int,
    name: str,
    path: str,
    review: Obj,
    ca: str | None,
    timeout: float,
    shown: str,
) -> Obj:
    ctx = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    conn = _Conn(host, port, name, ctx, timeout)
    prefix = f'failed to call webhook: Post "{shown}"'
    try:
        conn.request(
            "POST",
            f"{path}?timeout={int(timeout)}s",
            json.dumps(review),
            {"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        body = resp.read()
    except ConnectionRefusedError:
        raise WebhookCallError(
            f"{prefix}: dial tcp {host}:{port}: connect: connection refused"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        # OpenSSL's "no issuer", "self-signed" and "bad signature" are all what Go
        # calls an unknown authority
        unknown = exc.verify_code in (2, 7, 18, 19, 20, 21)
        what = (
            "certificate signed by unknown authority" if unknown else exc.verify_message
        )
        what = f"x509: {what}"
        raise WebhookCallError(
            f"{prefix}: tls: failed to verify certificate: {what}"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookCallError(f"{prefix}: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise WebhookCallError(
            f"{prefix}: expected webhook response of 200, got {resp.status}"
        )
    try:
        answer = json.loads(body)
    except ValueError:
        raise WebhookCallError("received invalid webhook response: not JSON") from None
    if (answer.get("response") or {}).get("uid") != review["request"]["uid"]:
        raise WebhookCallError("expected response.uid to match the request uid")
    return answer
