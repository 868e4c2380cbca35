"""The ``linkerd`` CLI twin: ``version``, ``install``, ``check``, ``viz``, ``inject``.

It speaks to the cluster only through the kubeconfig it is given (``--kubeconfig``
or ``KUBECONFIG``) and prints what the real CLI prints, with its exit codes:
``check`` exits 1 when any check that is not a warning failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from meshstack.twin.linkerd import catalog, certs, dataplane, manifests, output
from meshstack.twin.linkerd.checks import KUBERNETES, VERSION, Checker
from meshstack.twin.linkerd.kube import connect

DEFAULT_VERSION = "stable-2.14.10"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def cli_version() -> str:
    return os.environ.get("MESHSTACK_LINKERD_VERSION", DEFAULT_VERSION)


def duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not text.strip() or not m:
        raise argparse.ArgumentTypeError(
            f'invalid duration "{text}" (use e.g. 60s, 5m)'
        )
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def _globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--kubeconfig", **d)
    parser.add_argument("--context", **d)
    parser.add_argument("-L", "--linkerd-namespace", dest="linkerd_namespace", **d)
    parser.add_argument("--cni-namespace", dest="cni_namespace", **d)
    parser.add_argument("--verbose", action="store_true", **d)


def _check_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pre", action="store_true")
    p.add_argument("--proxy", action="store_true")
    p.add_argument("-n", "--namespace")
    p.add_argument("-o", "--output", default="table")
    p.add_argument("--wait", type=duration, default=300.0)
    p.add_argument("--expected-version")
    p.add_argument("--linkerd-cni-enabled", action="store_true")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="linkerd")
    _globals(top, suppress=False)
    sub = top.add_subparsers(dest="command", required=True)
    v = sub.add_parser("version")
    _globals(v, True)
    v.add_argument("--client", action="store_true")
    v.add_argument("--short", action="store_true")
    i = sub.add_parser("install")
    _globals(i, True)
    i.add_argument("--crds", action="store_true")
    i.add_argument("--ignore-cluster", action="store_true")
    i.add_argument("--identity-trust-anchors-file")
    i.add_argument("--identity-issuer-certificate-file")
    i.add_argument("--identity-issuer-key-file")
    i.add_argument("--linkerd-cni-enabled", action="store_true")
    c = sub.add_parser("check")
    _globals(c, True)
    _check_flags(c)
    viz = sub.add_parser("viz")
    _globals(viz, True)
    vsub = viz.add_subparsers(dest="viz_command", required=True)
    _globals(vsub.add_parser("install"), True)
    vc = vsub.add_parser("check")
    _globals(vc, True)
    _check_flags(vc)
    # `linkerd stat` is the pre-2.10 spelling of `linkerd viz stat`
    for stat_parser in (vsub.add_parser("stat"), sub.add_parser("stat")):
        _globals(stat_parser, True)
        stat_parser.add_argument("resource")
        stat_parser.add_argument("-n", "--namespace", default="default")
    inj = sub.add_parser("inject")
    _globals(inj, True)
    inj.add_argument("file")
    return top


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    for name in ("kubeconfig", "linkerd_namespace", "cni_namespace"):
        if not hasattr(args, name):
            setattr(args, name, None)
    try:
        return _dispatch(args, out, err)
    except Exception as exc:  # the real CLI prints the error and exits 1
        err.write(f"Error: {exc}\n")
        return 1


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "version":
        return version(args, out)
    if args.command == "install":
        return install(args, out, err)
    if args.command == "check":
        return check(args, out, err)
    if args.command == "inject":
        return inject(args, out, err)
    if args.command == "viz" and args.viz_command == "install":
        out.write(manifests.dump(manifests.viz(cli_version())))
        return 0
    if args.command == "viz" and args.viz_command == "check":
        return check(args, out, err, viz_only=True)
    from meshstack.twin.linkerd.stat import stat

    return stat(args, out)


def version(args: argparse.Namespace, out: TextIO) -> int:
    ver = cli_version()
    out.write(f"{ver}\n" if args.short else f"Client version: {ver}\n")
    if args.client:
        return 0
    try:
        kube = connect(args.kubeconfig)
        cm = kube.core.read_namespaced_config_map(
            "linkerd-config", args.linkerd_namespace or manifests.NS
        )
        server = (yaml.safe_load(cm.data["values"]) or {}).get("linkerdVersion")
    except Exception:
        server = None
    text = server or "unavailable"
    out.write(f"{text}\n" if args.short else f"Server version: {text}\n")
    return 0


def _identity(args: argparse.Namespace) -> tuple[certs.KeyPair, certs.KeyPair]:
    files = (
        args.identity_trust_anchors_file,
        args.identity_issuer_certificate_file,
        args.identity_issuer_key_file,
    )
    if not any(files):
        return certs.identity_pair()
    if not all(files):
        raise ValueError(
            "--identity-trust-anchors-file, --identity-issuer-certificate-"
            "file and --identity-issuer-key-file must be given together"
        )
    anchor, crt, key = (Path(f).read_text() for f in files)
    return certs.KeyPair(anchor, ""), certs.KeyPair(crt, key)


def install(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ver = cli_version()
    if args.crds:
        err.write(
            "Rendering Linkerd CRDs...\nNext, run `linkerd install | kubectl "
            "apply -f -` to install the control plane.\n\n"
        )
        out.write(manifests.dump(manifests.crds(ver)))
        return 0
    if not args.ignore_cluster and not _install_preconditions(args, err):
        return 1
    anchor, issuer = _identity(args)
    objs = manifests.control_plane(ver, anchor, issuer, cni=args.linkerd_cni_enabled)
    out.write(manifests.dump(objs))
    return 0


def _install_preconditions(args: argparse.Namespace, err: TextIO) -> bool:
    kube = connect(args.kubeconfig)
    have = {d.metadata.name for d in kube.ext.list_custom_resource_definition().items}
    if not all(f"{p}.{g}" in have for p, g, _, _ in manifests.CRD_NAMES):
        err.write(
            "Linkerd CRDs must be installed first. Run linkerd install with the "
            "--crds flag.\n"
        )
        return False
    ns = args.linkerd_namespace or manifests.NS
    names = {c.metadata.name for c in kube.core.list_namespaced_config_map(ns).items}
    if "linkerd-config" in names:
        err.write(
            f"Linkerd has already been installed on your cluster in the {ns} "
            "namespace. Please run upgrade if you need to update Linkerd.\n"
        )
        return False
    return True


def _checker(args: argparse.Namespace) -> Checker:
    return Checker(
        kubeconfig=args.kubeconfig,
        cli_version=cli_version(),
        namespace=args.linkerd_namespace or manifests.NS,
        cni_namespace=args.cni_namespace or "linkerd-cni",
        data_namespace=args.namespace,
        wait=args.wait,
        expected_version=args.expected_version,
        now=lambda: dt.datetime.now(dt.UTC),
    )


def _core_categories(args: argparse.Namespace, c: Checker) -> list:
    cats: list[Any] = list(KUBERNETES)
    if args.pre:
        return [*cats, catalog.pre_setup(), VERSION]
    cats += [catalog.existence_checks(), catalog.config_checks()]
    cats.append(("linkerd-cni-plugin", _cni_specs))
    cats += [catalog.identity_checks(), catalog.webhook_checks(), VERSION]
    cats.append(
        dataplane.data_plane_checks() if args.proxy else dataplane.version_checks()
    )
    return cats


def check(
    args: argparse.Namespace, out: TextIO, err: TextIO, viz_only: bool = False
) -> int:
    if args.output not in ("table", "json", "short"):
        err.write(
            f"Error: Validation error when executing check command: Invalid output "
            f"type '{args.output}'. Supported output types are: json, table, short\n"
        )
        return 1
    if args.pre and args.proxy:
        err.write(
            "Error: Validation error when executing check command: --pre and "
            "--proxy flags are mutually exclusive\n"
        )
        return 1
    c = _checker(args)
    if viz_only:
        return _viz_check(args, c, out)
    ok = _run_group(args, c, _core_categories(args, c), out, core=True)
    ok = _extensions(args, c, out) and ok
    if args.output != "json":
        output.status_line(out, ok)
    return 0 if ok else 1


def _run_group(args, c: Checker, cats: list, out: TextIO, core: bool) -> bool:
    if args.output == "json":
        results: list[output.Result] = []
        ok = c.run(cats, results.append)
        out.write(output.json_document(results))
        return ok
    if args.output == "table" and core:
        output.header(out, core=True)
    printer = output.TablePrinter(out, short=args.output == "short", core=core)
    ok = c.run(cats, printer)
    printer.finish()
    return ok


def _cni_specs(c: Checker) -> list:
    return dataplane.cni_checks()[1] if c.kube and dataplane.cni_enabled(c) else []


def _extensions(args, c: Checker, out: TextIO) -> bool:
    if c.kube is None:
        return True
    labelled = c.kube.core.list_namespace(label_selector="linkerd.io/extension").items
    names = [ns.metadata.labels.get("linkerd.io/extension") for ns in labelled]
    if "viz" not in names:
        return True
    if args.output == "table":
        output.header(out, core=False)
    return _run_group(args, c, [dataplane.viz_checks()], out, core=False)


def _viz_check(args, c: Checker, out: TextIO) -> int:
    c.run(KUBERNETES[:1], lambda r: None)
    ok = _run_group(args, c, [dataplane.viz_checks()], out, core=False)
    if args.output != "json":
        output.status_line(out, ok)
    return 0 if ok else 1


_WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}


def inject(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    report = []
    for doc in docs:
        kind = doc.get("kind", "")
        if kind in _WORKLOADS or kind == "Pod":
            meta = (
                doc
                if kind == "Pod"
                else doc.setdefault("spec", {}).setdefault("template", {})
            )
            notes = meta.setdefault("metadata", {}).setdefault("annotations", {})
            notes["linkerd.io/inject"] = "enabled"
            report.append(
                f'{kind.lower()} "{doc.get("metadata", {}).get("name", "")}" injected'
            )
    out.write("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs))
    err.write("\n" + "\n".join(report) + "\n\n")
    return 0
