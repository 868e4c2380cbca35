"""Open a report in real headless Chromium and read the page its scripts built.

Allure's awesome report is a JavaScript application: the HTML file holds its data
and code, and the page a reader sees exists only after the scripts ran. Chromium's
``--dump-dom`` prints that page once ``--virtual-time-budget`` has let the scripts
finish, and :class:`Dom` turns it into elements that can be looked up by the
``data-testid`` attributes the report's own UI tests rely on.

Chromium is only ever pointed at ``file://`` pages, and :func:`assert_self_contained`
must pass on a page before it is opened, so the browser never reaches the network.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

log = logging.getLogger(__name__)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RENDER_TIMEOUT = 120.0
# Virtual milliseconds the page's scripts get before the DOM is read.
VIRTUAL_TIME_BUDGET_MS = 10_000
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)
# Anything a browser fetches by itself when a page opens (not a link one clicks).
_REMOTE_LOAD = re.compile(
    r"<(?:script|img|iframe|link|source|video|audio|embed|object)\b[^>]*?"
    r"\b(?:src|href|data)\s*=\s*[\"']?(?:https?:)?//",
    re.IGNORECASE,
)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
_VOID |= {"source", "track", "wbr"}


def available() -> bool:
    return Path(CHROMIUM).is_file()


def assert_self_contained(html: str, where: Path) -> None:
    """Fail unless opening ``html`` would load nothing from any network."""
    __tracebackhide__ = True
    found = [m.group(0)[:160] for m in _REMOTE_LOAD.finditer(html)]
    assert not found, (
        f"{where} loads from the network when opened ({found}); it must be "
        "self-contained before a browser may open it here"
    )


def _chromium(url: str, extra: list[str]) -> str:
    """Run Chromium once on ``url`` with a fresh profile; return its stdout."""
    assert url.startswith("file://"), f"only file:// pages are opened here, not {url}"
    with tempfile.TemporaryDirectory(prefix="meshstack-chromium-") as profile:
        argv = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}"]
        argv += [f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *extra, url]
        log.debug("running %s", " ".join(argv))
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=RENDER_TIMEOUT
        )
    assert proc.returncode == 0, (
        f"`{' '.join(argv)}` exited {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def dump_dom(page: Path, fragment: str = "") -> Dom:
    """The page's DOM after its scripts ran, ``fragment`` being its route (#...)."""
    html = _chromium(page.resolve().as_uri() + fragment, ["--dump-dom"])
    assert "<html" in html, f"Chromium printed no DOM for {page}{fragment}"
    return Dom.parse(html)


def screenshot(page: Path, out: Path, fragment: str = "") -> Path:
    """A PNG of the page as Chromium draws it (800x600, its default window)."""
    _chromium(page.resolve().as_uri() + fragment, [f"--screenshot={out}"])
    assert out.is_file() and out.stat().st_size > 0, f"no screenshot written to {out}"
    return out


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def testid(self) -> str:
        return self.attrs.get("data-testid", "")

    @property
    def text(self) -> str:
        """The element's text, its pieces joined by single spaces."""
        parts: list[str] = []
        self._collect(parts)
        return " ".join(" ".join(parts).split())

    def _collect(self, parts: list[str]) -> None:
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            else:
                child._collect(parts)

    def iter(self) -> list[Element]:
        out: list[Element] = []
        stack: list[Element] = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed([c for c in node.children if isinstance(c, Element)]))
        return out

    def find_all(self, testid: str) -> list[Element]:
        return [e for e in self.iter() if e.testid == testid]

    def texts(self, testid: str) -> list[str]:
        return [e.text for e in self.find_all(testid)]


class Dom(Element):
    """The rendered page, scripts and styles left out."""

    @classmethod
    def parse(cls, html: str) -> Dom:
        html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S | re.I)
        builder = _Builder()
        builder.feed(html)
        builder.close()
        return builder.root


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Dom("#document", {})
        self._open: list[Element] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching open element; a stray end tag is ignored.
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip():
            self._open[-1].children.append(data)


_STATUS_CLASS = re.compile(r"\bstyles_(passed|failed|broken|skipped|unknown)__")


def sections(root: Element) -> dict[str, Element]:
    """Tree groups by title: each maps to the element holding header and content."""
    out: dict[str, Element] = {}
    for element in root.iter():
        for child in element.children:
            if isinstance(child, Element) and child.testid == "tree-section":
                titles = child.texts("tree-section-title")
                if titles:
                    out.setdefault(titles[0], element)
    return out


def status_counts(group: Element) -> dict[str, int]:
    """The counts on a tree group's status bar, by status."""
    header = next(
        c
        for c in group.children
        if isinstance(c, Element) and c.testid == "tree-section"
    )
    counts: dict[str, int] = {}
    for element in header.iter():
        match = _STATUS_CLASS.search(element.attrs.get("class", ""))
        if match and element.text.isdigit():
            counts[match.group(1)] = int(element.text)
    return counts


def leaf_titles(root: Element) -> list[str]:
    return root.texts("tree-leaf-title")


def trend_points(dom: Element) -> list[str]:
    """The x-axis labels of the "Status dynamics" chart: past runs, then Latest."""
    widgets = [
        e
        for e in dom.iter()
        if "styles_widget__" in e.attrs.get("class", "")
        and e.text.startswith("Status dynamics")
    ]
    assert len(widgets) == 1, f"{len(widgets)} 'Status dynamics' widgets drawn"
    # The y axis is labelled with counts, the x axis with run dates and "Latest".
    labels = [e.text for e in widgets[0].iter() if e.tag == "text"]
    return [label for label in labels if not label.isdigit()]
