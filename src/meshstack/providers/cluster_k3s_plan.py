"""Where and how the k3s cluster is installed: the nodes, their arguments, the
install script, its environment and the join token, and what a failed install said
(a part of :mod:`.cluster_k3s`)."""

from __future__ import annotations

import logging
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

from meshstack import ssh
from meshstack.analyzers import Context, Evidence, get
from meshstack.providers.base import ProviderError
from meshstack.verdicts import Finding, harness_error

log = logging.getLogger(__name__)


def fail(code: str, message: str, **details: Any) -> ProviderError:
    """A provisioning failure of the cluster layer with one reason code."""
    f = Finding(layer="cluster", details=dict(details))
    f.add(code, message)
    return ProviderError(f, f"cluster: {message}")


class InstallPlan:
    """The cluster provider's reading of its settings and of the layers below
    (``self.settings`` and ``self.ctx`` come from the provider)."""

    settings: dict[str, Any]
    ctx: Any

    def _nodes_plan(self) -> list[dict[str, Any]]:
        """Each server with its SSH target, role, overlay address and interface."""
        servers = self.ctx.outputs("cloud").get("servers") or []
        if not servers:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "context_missing",
                    "the cloud layer lists no servers; provision the cloud layer first",
                ),
                "cluster: no servers in the cloud layer's outputs",
            )
        members = {
            m["name"]: m for m in self.ctx.outputs("overlay").get("members") or []
        }
        plan = []
        for s in servers:
            member = members.get(s["name"], {})
            plan.append(
                {
                    **s,
                    "node_ip": member.get("address", ""),
                    "overlay_iface": member.get("interface", ""),
                }
            )
        plan.sort(key=lambda p: p.get("role") != "server")
        return plan

    def _target(self, node: dict[str, Any]) -> ssh.Target:
        key = Path(node["private_key_file"])
        port = int(node.get("ssh_port", 22))
        return ssh.Target(node["address"], node["ssh_user"], key, node["name"], port)

    def _args(self, key: str, node: dict[str, Any], server_ip: str) -> list[str]:
        values = {
            "node_ip": node["node_ip"],
            "overlay_iface": node["overlay_iface"],
            "server_ip": server_ip,
            "node_name": node["name"],
        }
        out = []
        for arg in self.settings.get(key) or []:
            text = str(arg)
            for name, value in values.items():
                if "{" + name + "}" in text and not value:
                    raise fail(
                        "node_ip_not_on_overlay",
                        f"{key} uses {{{name}}} but the overlay layer gives "
                        f"node {node['name']} none",
                        node=node["name"],
                    )
                text = text.replace("{" + name + "}", value)
            out.append(text)
        return out

    def _env(self, node: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
        """The profile's install env for one node.

        ``{python}`` becomes this interpreter and ``{node_name}`` the node's name;
        a value ``{path: P}`` becomes P resolved against the profile's directory.
        """
        values = {"{python}": sys.executable, "{node_name}": node["name"]}
        env = {}
        for key, value in (
            (self.settings.get("install") or {}).get("env") or {}
        ).items():
            if isinstance(value, dict) and "path" in value:
                env[str(key)] = str(self.ctx.path(str(value["path"])))
                continue
            text = str(value)
            for placeholder, filled in values.items():
                text = text.replace(placeholder, filled)
            env[str(key)] = text
        return {**env, **extra}

    def _script(self) -> str:
        if not (self.settings.get("install") or {}).get("script"):
            message = "no install script: set cluster.install.script in the profile"
            raise ProviderError(
                harness_error("cluster", "credentials_missing", message), message
            )
        path = self.ctx.path(str(self.settings["install"]["script"]))
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "credentials_missing",
                    f"cannot read the install script {path}: {exc}",
                ),
                str(exc),
            ) from None

    def _token(self) -> str:
        spec = self.settings.get("token")
        if spec is None:
            return secrets.token_hex(16)
        if (
            isinstance(spec, dict)
            and "file" in spec
            and not self.ctx.path(spec["file"]).exists()
        ):
            # a fresh cluster: the token is made here and kept where the profile says
            path = self.ctx.path(spec["file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
            log.info("made a new join token in %s", path)
        return self.ctx.secret(spec, "cluster.token").strip()

    _secret_token: str = ""

    def _install(
        self, node: dict[str, Any], argv: list[str], env: dict[str, str]
    ) -> ssh.Result:
        # the environment (the join token among it) travels on stdin ahead of the
        # script, so that it shows in no command line and no log
        exports = "".join(f"export {k}={_q(v)}\n" for k, v in env.items())
        command = f"sh -s -- {' '.join(_q(a) for a in argv)}"
        timeout = float(self.settings.get("install_timeout", 120))
        target = self._target(node)
        result = ssh.run(
            target, command, stdin=exports + self._script(), timeout=timeout
        )
        if not result.ok:
            raise self._install_failed(node, result)
        return result

    def _install_failed(
        self, node: dict[str, Any], result: ssh.Result
    ) -> ProviderError:
        """A finding from what the install printed, judged as a k3s log is."""
        text = result.stdout + "\n" + result.stderr
        evidence = Evidence(text, name=f"install on {node['name']}")
        judged = get("k3s-log").judge(evidence, Context())
        finding = Finding(layer="cluster", kind="k3s-install")
        for code in judged.reasons:
            if code in ("token_rejected", "node_password_rejected", "api_unreachable"):
                finding.add(code)
        for hint in judged.hints:
            finding.hint(hint)
        if not finding.reasons:
            finding.add(
                "node_not_ready", f"the install script failed on {node['name']}"
            )
        described = result.describe().replace(self._secret_token or "\0", "********")
        finding.evidence.insert(0, described)
        return ProviderError(
            finding, f"cluster: install on {node['name']} failed:\n{described}"
        )


def _q(text: str) -> str:
    return shlex.quote(text)
