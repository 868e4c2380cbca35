"""A twin of ``zerotier-cli`` for one node: info, listnetworks, join, leave.

It prints what the real command prints (``200 info ...``, the ``listnetworks``
table, ``-j`` JSON) and keeps the node's identity in its home directory. Where the
real node service would talk to the controller over ZeroTier's peer protocol, the
twin asks the controller twin's ``/twin/`` endpoints over the underlay.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from meshstack.twin.zerotier.controller import VERSION


def _identity(home: Path) -> str:
    file = home / "identity.public"
    if not file.exists():
        home.mkdir(parents=True, exist_ok=True)
        node = secrets.token_hex(5)
        file.write_text(f"{node}:0:{secrets.token_hex(32)}\n")
    return file.read_text().split(":", 1)[0]


def _netns() -> str:
    res = subprocess.run(
        ["ip", "netns", "identify"], capture_output=True, text=True, timeout=10
    )
    name = res.stdout.strip()
    if res.returncode != 0 or not name:
        raise SystemExit("zerotier-cli: this node's network namespace is unknown")
    return name


def _call(
    controller: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{controller}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _joined(home: Path) -> list[str]:
    file = home / "networks"
    return file.read_text().split() if file.exists() else []


def _set_joined(home: Path, nwids: list[str]) -> None:
    (home / "networks").write_text("\n".join(sorted(set(nwids))) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zerotier-cli")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--controller", required=True)
    p.add_argument("-j", dest="json", action="store_true")
    p.add_argument("command", choices=("info", "listnetworks", "join", "leave"))
    p.add_argument("nwid", nargs="?")
    args = p.parse_args(argv)
    node = _identity(args.home)
    if args.command == "info":
        if args.json:
            print(
                json.dumps(
                    {
                        "address": node,
                        "online": True,
                        "version": VERSION,
                        "tcpFallbackActive": False,
                    },
                    indent=2,
                )
            )
        else:
            print(f"200 info {node} {VERSION} ONLINE")
        return 0
    if args.command in ("join", "leave"):
        if not args.nwid or len(args.nwid) != 16:
            print(f"invalid network id: {args.nwid}", file=sys.stderr)
            return 1
        if args.command == "join":
            _call(
                args.controller,
                "POST",
                f"/twin/join/{args.nwid}/{node}",
                {"netns": _netns()},
            )
            _set_joined(args.home, [*_joined(args.home), args.nwid])
        else:
            _call(args.controller, "POST", f"/twin/leave/{args.nwid}/{node}", {})
            _set_joined(args.home, [n for n in _joined(args.home) if n != args.nwid])
        print(f"200 {args.command} OK")
        return 0
    confs = [
        _call(args.controller, "GET", f"/twin/netconf/{n}/{node}")
        for n in _joined(args.home)
    ]
    if args.json:
        print(json.dumps(confs, indent=2))
        return 0
    print(
        "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>"
    )
    for c in confs:
        ips = ",".join(c["assignedAddresses"]) or "-"
        print(
            f"200 listnetworks {c['nwid']} {c.get('name', '')} {c.get('mac', '-')} "
            f"{c['status']} {c.get('type', 'PRIVATE')} "
            f"{c.get('portDeviceName', '-')} {ips}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
