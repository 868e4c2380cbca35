"""Address settings checked as the profile loader checks them: ranges and CIDRs."""

from __future__ import annotations

import ipaddress


def range_problem(text: str) -> str | None:
    """Why ``text`` is neither a CIDR nor a ``first-last`` range, or None if it is
    one (the forms MetalLB's address pools take)."""
    if "-" not in text:
        try:
            ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            return f"expected a CIDR or first-last range, found {text!r}"
        return None
    first_text, _, last_text = text.partition("-")
    try:
        first = ipaddress.ip_address(first_text.strip())
        last = ipaddress.ip_address(last_text.strip())
    except ValueError:
        return f"expected a range of two addresses, found {text!r}"
    if first.version != last.version:
        return f"expected both ends of one family, found {text!r}"
    if int(first) > int(last):
        return f"expected the first address before the last, found {text!r}"
    return None
