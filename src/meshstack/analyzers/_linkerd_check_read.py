"""Read every output format of `linkerd check` into one list of check results.

The formats: glyph tables (`√ × ‼`, and `✔ ✘ ⚠` of 2019), `-o short` (only the
failed and warning checks), the 2018 dotted lines (`category: description....
[FAIL] -- message`, `[retry]` while waiting), a spinner line left by a run cut off
while it waited, and `-o json`, which with extensions is a stream of JSON
documents, possibly followed by a plain-text table (2.11.0) or cut off part-way.

A prefix that every line carries is removed before reading, whatever glyph set
follows it: a CI system's timestamp (GitHub Actions, `kubectl logs
--timestamps`), `kubectl logs --prefix`'s `[pod/x/container]`, `> ` quoting, and
syslog / journald line heads. Without this a prefixed `×` line reads as nothing
and the report would pass on its status lines alone. A prefix only some lines
carry is left alone (it is then content, not decoration).
Judging lives in :mod:`meshstack.analyzers.linkerd_check`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Evidence

# A check's text is matched up to this length, so that no pattern turns slow on a
# pathological artifact; real check messages are far shorter.
MAX_TEXT = 8000
OK, WARNING, FAILED, WAITING = "ok", "warning", "failed", "waiting"
_GLYPHS = {"√": OK, "✔": OK, "×": FAILED, "✘": FAILED, "‼": WARNING, "⚠": WARNING}
_DOTTED = {"ok": OK, "FAIL": FAILED, "warning": WARNING, "retry": WAITING}
_JSON_RESULTS = {"success": OK, "warning": WARNING, "error": FAILED}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_GLYPH_LINE = re.compile(r"^\s*([√✔×✘‼⚠])\s+(\S.*)$")
_SPINNER_LINE = re.compile(r"^([|/\\-])\s+(\S.*)$")
_DOTTED_LINE = re.compile(
    r"^\s*(?:(?P<cat>[\w.-]+):\s+)?(?P<desc>\S.*?)\.{2,}\s*"
    r"\[(?P<st>ok|FAIL|warning|retry)\](?:\s*--\s*(?P<msg>.*))?$"
)
_STATUS_LINE = re.compile(r"Status check results are\s*(\S+)")
_HINT_LINE = re.compile(r"^see \S+ for hints$", re.IGNORECASE)
_UNDERLINE = re.compile(r"^(-{3,}|={3,})$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_SYSLOG_TIME = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
# Line heads that decorate every line of a capture; longest forms first.
_PREFIXES = tuple(
    re.compile(p)
    for p in (
        rf"^[^\t\n]{{1,200}}\t[^\t\n]{{1,200}}\t{_ISO_TIME} ?",  # gh run view --log
        rf"^(?:{_ISO_TIME}|{_SYSLOG_TIME}) \S+ [\w./@-]+(?:\[\d+\])?: ?",  # journald
        rf"^{_ISO_TIME}(?: |$)",  # GitHub Actions, kubectl logs --timestamps
        r"^\[[^\]\n/]{0,100}/[^\]\n]{1,200}\](?: |$)",  # kubectl --prefix [pod/x/c]
        r"^>(?: |$)",  # quoted in a mail, an issue or a chat
    )
)


@dataclass
class Check:
    """One check result, whatever output format it came from."""

    category: str
    description: str
    status: str
    messages: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join([self.description, *self.messages])[:MAX_TEXT]

    @property
    def error(self) -> str:
        return "\n".join(self.messages)[:MAX_TEXT]


@dataclass
class Report:
    """Everything read from one artifact."""

    checks: list[Check] = field(default_factory=list)
    statuses: list[bool] = field(default_factory=list)
    # Each status as the input shows it (a hint quotes these, never its own words).
    status_lines: list[str] = field(default_factory=list)
    json_documents: int = 0
    text_seen: bool = False
    cut_json: bool = False


# --- reading -------------------------------------------------------------------


def screen_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: colours dropped, carriage returns applied."""
    out = []
    for raw in _ANSI.sub("", text).split("\n"):
        segments = [s for s in raw.split("\r") if s.strip()]
        out.append(segments[-1].rstrip() if segments else "")
    return out


def _json_stream(text: str, report: Report) -> str:
    """Read the leading JSON documents into the report; return the text after them."""
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    while pos < len(text) and text[pos] in "{[":
        try:
            doc, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            if text[pos] == "{" and _salvage_json(text[pos:], report):
                return ""
            # A document left open (cut right after `{`, or inside its
            # categories) must not vanish: the report is marked cut off.
            report.cut_json = report.cut_json or _opens_document(text, pos)
            break
        first = len(report.checks)
        _read_json_document(doc, report, text[pos:end])
        _cite_json_lines(report.checks[first:], text[pos:end])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return text[pos:]


def _opens_document(text: str, pos: int) -> bool:
    """Whether a `{` that did not decode starts a JSON document (not prose)."""
    line = text[pos + 1 : pos + 200].split("\n", 1)[0].strip()
    return text[pos] == "{" and (not line or line.startswith('"'))


_JSON_CATEGORY = re.compile(r'"categoryName"\s*:\s*"([^"]*)"')
_JSON_SUCCESS = re.compile(r'"success"\s*:\s*(true|false)')
# A JSON string (one cut off runs to the end, so no input makes this slow) or a
# bracket; brackets inside strings are thereby never counted.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\Z)|[{}\[\]]')
# document { > categories [ > category { > checks [ > check {
_CHECK_DEPTH = 5


def _check_spans(raw: str) -> list[tuple[int, int]]:
    """Where each complete check object of a JSON document lies in its text."""
    spans: list[tuple[int, int]] = []
    depth, start = 0, -1
    for m in _JSON_TOKEN.finditer(raw):
        token = m.group(0)
        if token in "{[":
            depth += 1
            start = m.start() if depth == _CHECK_DEPTH and token == "{" else start
        elif token in "}]":
            if depth == _CHECK_DEPTH and token == "}" and start >= 0:
                spans.append((start, m.end()))
                start = -1
            depth -= 1
    return spans


def _salvage_json(text: str, report: Report) -> bool:
    """Read the complete check objects of a JSON document that was cut off."""
    categories = [(m.start(), m.group(1)) for m in _JSON_CATEGORY.finditer(text)]
    found = 0
    for start, end in _check_spans(text):
        try:
            item = json.loads(text[start:end])
        except (ValueError, RecursionError):
            continue
        if not isinstance(item, dict) or "result" not in item:
            continue
        before = [name for at, name in categories if at < start]
        check = _json_check(before[-1] if before else "", item)
        check.lines = _object_lines(text[start:end])
        report.checks.append(check)
        found += 1
    if found:
        report.json_documents += 1
        report.cut_json = True
        success = re.match(r'\{\s*("success"\s*:\s*(true|false))', text)
        if success:
            report.statuses.append(success.group(2) == "true")
            report.status_lines.append(success.group(1))
    return bool(found)


def _object_lines(raw: str) -> list[str]:
    """The lines of one check object that name it, its error and its result."""
    keys = ('"description"', '"error"', '"result"')
    lines = [ln.strip() for ln in raw.splitlines() if any(k in ln for k in keys)]
    return lines or [raw.strip()]


def _cite_json_lines(checks: list[Check], raw: str) -> None:
    """Point each check's evidence at its own lines of the document as printed.

    In a layout where the objects cannot be told apart, a check cites the lines
    that hold its description, or none: never words the input does not contain.
    """
    spans = _check_spans(raw)
    if len(spans) == len(checks):
        for check, (start, end) in zip(checks, spans, strict=True):
            check.lines = _object_lines(raw[start:end])
        return
    for check in checks:
        desc = check.description
        check.lines = [ln.strip() for ln in raw.splitlines() if desc and desc in ln]


def _read_json_document(doc: object, report: Report, raw: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        return
    report.json_documents += 1
    # A document without a true/false "success" states no overall result.
    success = doc.get("success")
    if isinstance(success, bool):
        report.statuses.append(success)
        shown = [m.group(0) for m in _JSON_SUCCESS.finditer(raw)]
        report.status_lines.extend(
            q for q in shown[:1] if q.endswith(str(success).lower())
        )
    for cat in doc["categories"]:
        if not isinstance(cat, dict) or not isinstance(cat.get("checks"), list):
            continue
        name = str(cat.get("categoryName", ""))
        for item in cat["checks"]:
            if isinstance(item, dict):
                report.checks.append(_json_check(name, item))


def _json_check(category: str, item: dict[str, Any]) -> Check:
    """A check of a JSON document; its ``lines`` are cited from the text after."""
    result = str(item.get("result", ""))
    desc = str(item.get("description", ""))
    error = str(item.get("error") or "")
    status = _JSON_RESULTS.get(result, FAILED)
    messages = [ln.strip() for ln in error.splitlines() if ln.strip()]
    return Check(category, desc, status, messages, [])


def _read_text(text: str, report: Report) -> None:
    lines = screen_lines(text)
    category = ""
    current: Check | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not stripped or _UNDERLINE.match(stripped):
            continue
        if _UNDERLINE.match(nxt) and not line[:1].isspace():
            category = stripped if _CATEGORY.match(stripped) else category
            continue
        new = _parse_check_line(line, category, report)
        if new is not None:
            report.checks.append(new)
            report.text_seen = True
            current = new
        elif current is not None and (line[:1].isspace() or stripped[:1] == "*"):
            current.lines.append(line)
            if not _HINT_LINE.match(stripped):
                current.messages.append(stripped)


def _parse_check_line(line: str, category: str, report: Report) -> Check | None:
    status = _STATUS_LINE.search(line)
    if status:
        report.statuses.append(status.group(1) in ("√", "✔", "[ok]"))
        report.status_lines.append(line.strip())
        report.text_seen = True
        return None
    m = _GLYPH_LINE.match(line)
    if m:
        return Check(category, m.group(2).strip(), _GLYPHS[m.group(1)], [], [line])
    # The length bound keeps the dotted pattern linear on arbitrary input.
    m = _DOTTED_LINE.match(line) if len(line) < 1000 and "[" in line else None
    if m:
        msgs = [m.group("msg").strip()] if m.group("msg") else []
        cat = m.group("cat") or category
        return Check(cat, m.group("desc").strip(), _DOTTED[m.group("st")], msgs, [line])
    m = _SPINNER_LINE.match(line)
    if m and (report.checks or category):
        return Check(category, "", WAITING, [m.group(2).strip()], [line])
    if "waiting for check to complete" in line:
        return Check(category, "", WAITING, [line.strip()], [line])
    return None


def strip_prefix(text: str) -> str:
    """The text without the line heads CI systems, loggers and quoting put in front.

    A head every non-blank line carries is removed from all (the last line may lack
    it: a copy cut mid-prefix). Where lines carry different heads (stdout and stderr
    interleaved, an unprefixed banner among prefixed lines), each line loses the
    head it carries: a check line never starts like one of these heads.
    (Locust's logs are read with :func:`meshstack.analyzers._line_prefix.plain`,
    whose heads include a bracketed time, which a proxy log line starts with.)
    """
    lines = _ANSI.sub("", text).split("\n")
    body = [ln for ln in lines[:-1] if ln.strip()] or lines[-1:]
    if not body or not body[0].strip():
        return text
    for prefix in _PREFIXES:
        if all(prefix.match(ln) for ln in body):
            return "\n".join(prefix.sub("", ln, count=1) for ln in lines)
    out, changed = [], False
    for line in lines:
        for prefix in _PREFIXES:
            m = prefix.match(line)
            if m is not None and m.end() > 0:
                line, changed = line[m.end() :], True
                break
        out.append(line)
    return "\n".join(out) if changed else text


def unprefixed(evidence: Evidence) -> Evidence:
    """The evidence with :func:`strip_prefix` applied (for every Linkerd kind)."""
    text = strip_prefix(evidence.text)
    if text is evidence.text:
        return evidence
    return Evidence(text=text, name=evidence.name, path=evidence.path)


def read(text: str) -> Report:
    """Every check result in a `linkerd check` artifact, in printed order."""
    report = Report()
    text = strip_prefix(text)
    rest = _json_stream(text, report)
    if rest.strip():
        _read_text(rest, report)
    return report


def has_category_header(text: str) -> bool:
    lines = screen_lines(strip_prefix(text))
    return any(
        _UNDERLINE.match(b.strip()) and _CATEGORY.match(a)
        for a, b in zip(lines, lines[1:], strict=False)
    )
