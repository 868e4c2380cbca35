"""What ``linkerd check`` judges, against the real state of the (twin) cluster.

Each check is a function that returns on success and raises :class:`CheckError`
with the message the real CLI prints. Categories, descriptions and hint anchors
follow Linkerd 2.14's health checker; a failed *fatal* check ends the run, and
*retry* checks are re-run until ``--wait`` is spent, as the real CLI does while
the control plane starts (silently, when stdout is not a terminal).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshstack.twin.linkerd import certs
from meshstack.twin.linkerd.kube import ApiException, Kube, connect
from meshstack.twin.linkerd.output import Result, hint_base

NS_EXT_LABEL = "linkerd.io/extension"
PROXY = "linkerd-proxy"
SKEW_TOLERANCE = dt.timedelta(minutes=5)
EXPIRY_WARNING = dt.timedelta(days=60)
MIN_K8S = (1, 22)


class CheckError(Exception):
    """A check's failure, worded as the real CLI words it."""


@dataclass(frozen=True)
class Spec:
    description: str
    anchor: str
    run: Callable[[Checker], None]
    warning: bool = False
    fatal: bool = False
    retry: bool = False


@dataclass
class Checker:
    """Runs check specs against one cluster and hands each result to an observer."""

    kubeconfig: str | None
    cli_version: str
    namespace: str = "linkerd"
    cni_namespace: str = "linkerd-cni"
    data_namespace: str | None = None
    wait: float = 300.0
    expected_version: str | None = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    kube: Kube | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> Kube:
        if self.kube is None:
            raise CheckError("the Kubernetes client was not initialised")
        return self.kube

    def run(self, categories: list[tuple[str, list[Spec]]], observe) -> bool:
        """Run every check in order; False if any non-warning check failed."""
        success = True
        deadline = time.monotonic() + self.wait
        for category, specs in categories:
            # a category may depend on the cluster (CNI): resolved when reached
            for spec in specs(self) if callable(specs) else specs:
                result = self._one(category, spec, deadline)
                observe(result)
                if result.failed:
                    success = False
                    if spec.fatal:
                        return False
        return success

    def _one(self, category: str, spec: Spec, deadline: float) -> Result:
        while True:
            try:
                spec.run(self)
                error = None
            except CheckError as exc:
                error = str(exc)
            except ApiException as exc:
                error = _api_message(exc)
            if error is None or not spec.retry or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        url = hint_base(self.cli_version) + spec.anchor if error else ""
        return Result(category, spec.description, error, spec.warning, url)

    # -- shared lookups ----------------------------------------------------------
    def values(self) -> dict[str, Any]:
        if "values" not in self.cache:
            cm = self.k.core.read_namespaced_config_map(
                "linkerd-config", self.namespace
            )
            self.cache["values"] = (
                yaml.safe_load((cm.data or {}).get("values", "")) or {}
            )
        return self.cache["values"]

    def latest(self) -> str:
        """The newest release, as versioncheck.linkerd.io would say; offline here."""
        if self.expected_version:
            return self.expected_version
        raise CheckError(
            f'Get "https://versioncheck.linkerd.io/version.json?version='
            f'{self.cli_version}&uuid=unknown&source=cli": dial tcp: lookup '
            "versioncheck.linkerd.io: no such host"
        )


def _api_message(exc: ApiException) -> str:
    try:
        body = yaml.safe_load(exc.body or "") or {}
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except yaml.YAMLError:
        pass
    return f"{exc.status} {exc.reason}".strip()


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- kubernetes-api / kubernetes-version -----------------------------------------


def _init_client(c: Checker) -> None:
    try:
        c.kube = connect(c.kubeconfig)
    except Exception as exc:  # the CLI prints whatever the loader said
        raise CheckError(str(exc)) from None


def _query_api(c: Checker) -> None:
    from kubernetes import client

    try:
        info = client.VersionApi(c.k.api).get_code(_request_timeout=10)
    except ApiException:
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckError(f'Get "{c.k.host}/version?timeout=32s": {reason}') from None
    c.cache["k8s_version"] = info.git_version


def _min_version(c: Checker) -> None:
    raw = str(c.cache.get("k8s_version", "")).lstrip("v")
    try:
        parts = tuple(int(p) for p in raw.split("+")[0].split(".")[:2])
    except ValueError:
        raise CheckError(f"could not parse the Kubernetes version {raw!r}") from None
    if parts < MIN_K8S:
        need = ".".join(map(str, MIN_K8S)) + ".0"
        raise CheckError(
            f"Kubernetes is on version [{raw}], but version [{need}] or more recent "
            "is required"
        )


KUBERNETES = [
    (
        "kubernetes-api",
        [
            Spec("can initialize the client", "k8s-api", _init_client, fatal=True),
            Spec("can query the Kubernetes API", "k8s-api", _query_api, fatal=True),
        ],
    ),
    (
        "kubernetes-version",
        [
            Spec(
                "is running the minimum Kubernetes API version",
                "k8s-version",
                _min_version,
            )
        ],
    ),
]


# --- linkerd-version -------------------------------------------------------------


def _latest(c: Checker) -> None:
    c.latest()


def _channel_match(c: Checker, version: str) -> None:
    try:
        latest = c.latest()
    except CheckError:
        raise CheckError(f"unsupported version channel: {version}") from None
    if version != latest:
        raise CheckError(
            f"is running version {version.split('-', 1)[-1]} but the latest "
            f"{version.split('-', 1)[0]} version is {latest.split('-', 1)[-1]}"
        )


VERSION = (
    "linkerd-version",
    [
        Spec("can determine the latest version", "l5d-version-latest", _latest, True),
        Spec(
            "cli is up-to-date",
            "l5d-version-cli",
            lambda c: _channel_match(c, c.cli_version),
            True,
        ),
    ],
)


# --- certificates (used by linkerd-identity and webhook checks) ------------------


def _pem_validity(c: Checker, pem: str, what: str) -> None:
    start, end = certs.validity(pem)
    now = c.now()
    if now < start:
        raise CheckError(f"{what} is not valid before: {rfc3339(start)}")
    if now > end:
        raise CheckError(f"{what} is not valid anymore. Expired on {rfc3339(end)}")


def _pem_expiring(c: Checker, pem: str, what: str) -> None:
    _, end = certs.validity(pem)
    if end - c.now() < EXPIRY_WARNING:
        raise CheckError(f"{what} will expire on {rfc3339(end)}")


def anchors_pem(c: Checker) -> str:
    pem = c.values().get("identityTrustAnchorsPEM")
    if not pem:
        raise CheckError("no trust anchors found in linkerd-config")
    return str(pem)


def issuer_pem(c: Checker) -> str:
    import base64

    secret = c.k.core.read_namespaced_secret("linkerd-identity-issuer", c.namespace)
    raw = (secret.data or {}).get("crt.pem")
    if not raw:
        raise CheckError("key crt.pem is missing from secret linkerd-identity-issuer")
    return base64.b64decode(raw).decode()


def _anchor_line(pem: str, state: str) -> str:
    serial, cn = certs.serial_and_cn(pem)
    return f"\t* {serial} {cn} {state}"


def _anchors_valid(c: Checker) -> None:
    pem = anchors_pem(c)
    try:
        _pem_validity(c, pem, "anchor")
    except CheckError as exc:
        state = str(exc).removeprefix("anchor is ")
        raise CheckError("Invalid anchors:\n" + _anchor_line(pem, state)) from None


def _anchors_expiring(c: Checker) -> None:
    pem = anchors_pem(c)
    try:
        _pem_expiring(c, pem, "anchor")
    except CheckError as exc:
        state = str(exc).removeprefix("anchor ")
        raise CheckError(
            "Anchors expiring soon:\n" + _anchor_line(pem, state)
        ) from None


def _issued_by_anchor(c: Checker) -> None:
    from cryptography import x509

    anchor = x509.load_pem_x509_certificate(anchors_pem(c).encode())
    issuer = x509.load_pem_x509_certificate(issuer_pem(c).encode())
    try:
        issuer.verify_directly_issued_by(anchor)
    except Exception:
        raise CheckError(
            "x509: certificate signed by unknown authority (possibly because of "
            '"x509: ECDSA verification failure" while trying to verify candidate '
            'authority certificate "root.linkerd.cluster.local")'
        ) from None
