"""Joining a node to the server, with k3s's token and node-password rules.

Server side: ``GET /cacerts`` returns the cluster CA (anyone may fetch it; an
agent checks it against the hash in a ``K10<sha256>::server:<secret>`` token),
and ``GET /v1-k3s/client-kubelet-token`` (basic auth ``node:<secret>``, headers
``k3s-Node-Name`` and ``k3s-Node-Password``) admits a node: a wrong secret is
401, and a node name already registered with another password is 403, as k3s
keeps each node's password hash in the Secret ``<node>.node-password.k3s`` in
kube-system. An admitted node gets a bearer token for its kubelet (where k3s
issues client certificates: the twin's one simplification here).

Agent side: :func:`join` does the same requests and fails with k3s's wording.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import secrets
import ssl
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from meshstack.twin.kube.errors import ApiError

if TYPE_CHECKING:
    from meshstack.twin.kube.apiserver import ApiServer
    from meshstack.twin.kube.server import Handler

log = logging.getLogger(__name__)

SYSTEM_NS = "kube-system"
PASSWORD_REJECTED = (
    "Node password rejected, duplicate hostname or contents of "
    "'/etc/rancher/node/password' may not match server node-passwd entry, try "
    "enabling a unique node name with the --with-node-id flag"
)


class JoinError(Exception):
    """The server refused the node; the message is what k3s would log."""


def token_secret(token: str) -> str:
    """The secret part of a k3s token (``K10<hash>::<user>:<secret>`` or plain)."""
    return (
        token.rpartition(":")[2] if token.startswith("K10") and "::" in token else token
    )


def token_ca_hash(token: str) -> str | None:
    return (
        token[3:].partition("::")[0]
        if token.startswith("K10") and "::" in token
        else None
    )


def full_token(secret: str, ca_pem: bytes) -> str:
    return f"K10{hashlib.sha256(ca_pem).hexdigest()}::server:{secret}"


class JoinService:
    def __init__(self, server: ApiServer, secret: str) -> None:
        self.server = server
        self.secret = secret
        self._load_node_tokens()

    def install(self) -> None:
        routes = self.server.http.public_routes
        routes["/cacerts"] = self._cacerts
        routes["/v1-k3s/client-kubelet-token"] = self._admit
        threading.Thread(target=self._forget_deleted_nodes, daemon=True).start()

    def _forget_deleted_nodes(self) -> None:
        """As k3s does, a deleted Node's password entry goes with it."""
        store = self.server.store
        events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        store.watch(("", "nodes"), lambda o: True, store.rv, events)
        rt = self.server.api.resource("v1", "Secret")
        while (item := events.get()) is not None:
            etype, node = item
            if etype != "DELETED":
                continue
            name = f"{node['metadata']['name']}.node-password.k3s"
            try:
                self.server.api.delete(rt, SYSTEM_NS, name)
                log.info("node %s deleted: removed its password entry", name)
            except ApiError as exc:
                log.debug("no password entry %s to remove: %s", name, exc)

    def _load_node_tokens(self) -> None:
        for secret in self.server.store.list(("", "secrets"), SYSTEM_NS)[0]:
            if secret["metadata"]["name"].endswith(".node-password.k3s"):
                token = (secret.get("data") or {}).get("token")
                if token:
                    self.server.tokens.add(base64.b64decode(token).decode())

    def _cacerts(self, h: Handler) -> None:
        h.send_text(200, self.server.ca_pem, "application/x-pem-file")

    def _admit(self, h: Handler) -> None:
        auth = h.headers.get("Authorization", "")
        user_pass = (
            base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
        )
        if user_pass.partition(":")[2] != self.secret:
            raise ApiError("Unauthorized", "Unauthorized")
        node, password = (
            h.headers.get("k3s-Node-Name", ""),
            h.headers.get("k3s-Node-Password", ""),
        )
        if not node or not password:
            raise ApiError(
                "BadRequest", "missing k3s-Node-Name or k3s-Node-Password header"
            )
        token = self._check_password(node, password)
        h.send_text(200, token.encode())

    def _check_password(self, node: str, password: str) -> str:
        api = self.server.api
        rt = api.resource("v1", "Secret")
        name = f"{node}.node-password.k3s"
        digest = hashlib.sha256(password.encode()).hexdigest()
        existing = api.store.get(rt.key, SYSTEM_NS, name)
        if existing is not None:
            data = existing.get("data") or {}
            if base64.b64decode(data.get("hash", "")).decode() != digest:
                log.error(
                    "Node password validation failed for '%s', "
                    "using passwd file 'kube-system/%s'",
                    node,
                    name,
                )
                raise ApiError("Forbidden", "Forbidden")
            return base64.b64decode(data["token"]).decode()
        token = secrets.token_hex(24)
        secret = {
            "metadata": {
                "name": name,
                "namespace": SYSTEM_NS,
                "labels": {"k3s.io/node-password": "true"},
            },
            "type": "k3s.cattle.io/node-password",
            "data": {"hash": _b64(digest), "token": _b64(token)},
        }
        api.create(rt, SYSTEM_NS, secret)
        self.server.tokens.add(token)
        log.info("node %s admitted", node)
        return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def join(
    server_url: str, token: str, node: str, password: str, timeout: float = 10.0
) -> tuple[bytes, str]:
    """Fetch and check the CA, then get the node's kubelet token."""
    ca = _fetch_ca(server_url, timeout)
    want = token_ca_hash(token)
    have = hashlib.sha256(ca).hexdigest()
    if want and want != have:
        raise JoinError(
            "failed to validate token: token CA hash does not match the Cluster CA "
            f"certificate hash: {want} != {have}"
        )
    ctx = ssl.create_default_context(cadata=ca.decode())
    url = f"{server_url}/v1-k3s/client-kubelet-token"
    auth = base64.b64encode(f"node:{token_secret(token)}".encode()).decode()
    req = urllib.request.Request(
        url,
        headers={
            "Authorization": f"Basic {auth}",
            "k3s-Node-Name": node,
            "k3s-Node-Password": password,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return ca, resp.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise JoinError(
                f"failed to retrieve agent config: {url}: 401 Unauthorized"
            ) from None
        if exc.code == 403:
            raise JoinError(
                f"failed to retrieve agent config: {PASSWORD_REJECTED}"
            ) from None
        raise JoinError(
            f"{url}: {exc.code} {exc.reason}: {exc.read()[:200]!r}"
        ) from None


def _fetch_ca(server_url: str, timeout: float) -> bytes:
    # the CA is what is being fetched, so it cannot be verified yet (k3s does
    # the same and then checks it against the token's hash)
    ctx = ssl._create_unverified_context()  # noqa: S323
    url = f"{server_url}/cacerts"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JoinError(
            f'failed to get CA certs: Get "{url}": dial tcp: {reason}'
        ) from None
