"""How ``linkerd check`` prints its results: table, short and JSON.

The shapes follow the real CLI: a category name underlined with dashes, one line
per check with ``√``/``×``/``‼``, an error indented four spaces and a ``see <url>
for hints`` line, a blank line after each group, and one ``Status check results
are √|×`` line at the very end. ``-o json`` prints one indented JSON document per
group (core, then each extension) back to back and no status line, exactly the
multi-document shape the harness must cope with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

OK, WARN, FAIL = "\u221a", "\u203c", "\u00d7"
_STABLE = re.compile(r"stable-(\d\.\d+)\.")


@dataclass
class Result:
    """One finished check."""

    category: str
    description: str
    error: str | None = None
    warning: bool = False
    hint_url: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.warning


def hint_base(version: str) -> str:
    """Where check hints live for a CLI version, as the real CLI computes it."""
    m = _STABLE.search(version)
    return (
        f"https://linkerd.io/{m.group(1)}/checks/#"
        if m
        else "https://linkerd.io/2/checks/#"
    )


def header(out: TextIO, core: bool) -> None:
    text = "Linkerd core checks" if core else "Linkerd extensions checks"
    out.write(f"{text}\n{'=' * len(text)}\n\n")


def _glyph(r: Result) -> str:
    if r.error is None:
        return OK
    return WARN if r.warning else FAIL


def _line(out: TextIO, r: Result) -> None:
    out.write(f"{_glyph(r)} {r.description}\n")
    if r.error is None:
        return
    out.write(f"    {r.error}\n")
    if r.hint_url:
        out.write(f"    see {r.hint_url} for hints\n")


class TablePrinter:
    """Prints results as they arrive (``-o table`` or ``-o short``)."""

    def __init__(self, out: TextIO, short: bool = False, core: bool = True) -> None:
        self.out, self.short, self.core = out, short, core
        self.last_category = ""
        self.header_done = False
        self.warned = False

    def __call__(self, r: Result) -> None:
        if self.short and r.error is None:
            return
        if self.short and not self.header_done:
            header(self.out, self.core)
            self.header_done = True
        self.warned = self.warned or (r.error is not None and r.warning)
        if r.category != self.last_category:
            if self.last_category:
                self.out.write("\n")
            self.out.write(f"{r.category}\n{'-' * len(r.category)}\n")
            self.last_category = r.category
        _line(self.out, r)
        self.out.flush()

    def finish(self) -> None:
        if not self.short or self.warned:
            self.out.write("\n")


def json_document(results: Iterable[Result]) -> str:
    """One group's results as the CLI's JSON document."""
    categories: list[dict] = []
    success = True
    for r in results:
        if not categories or categories[-1]["categoryName"] != r.category:
            categories.append({"categoryName": r.category, "checks": []})
        item: dict[str, str] = {"description": r.description}
        if r.error is not None:
            if r.hint_url:
                item["hint"] = r.hint_url
            item["error"] = r.error
        item["result"] = (
            "success" if r.error is None else ("warning" if r.warning else "error")
        )
        categories[-1]["checks"].append(item)
        success = success and not r.failed
    return json.dumps({"success": success, "categories": categories}, indent=2) + "\n"


def status_line(out: TextIO, success: bool) -> None:
    out.write(f"Status check results are {OK if success else FAIL}\n")


Observer = Callable[[Result], None]
