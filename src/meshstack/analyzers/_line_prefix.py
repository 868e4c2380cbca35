"""Reading a log line without what loggers and CI systems put in front of it.

A tool's line reaches the user behind prefixes its logger or a CI system adds: its
own ``[time] host/LEVEL/logger: ``, the ``[…]`` a person pastes instead of the time,
CI timestamps (GitHub Actions, Azure, GitLab, ``docker logs -t``, ``kubectl logs
--timestamps``), ``kubectl logs --prefix``'s ``[pod/name/container]``, docker
compose's ``locust-1  | ``, syslog and journald, ``> `` quoting and ANSI colours, in
any order and combination. :func:`plain` strips them so a line is read by its own
text. Every pattern is matched at the line's start only and repeats a bounded number
of times, so no line, however long, makes it backtrack.

The Linkerd kinds use :func:`meshstack.analyzers._linkerd_check_read.strip_prefix`
instead, on purpose: a bracketed head such as ``[  0.002s]`` is a prefix here (a
logger's time in front of Locust's line) but is the Linkerd proxy's own line start
there, and that reader strips a head from all lines only when every line has it.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[A-Za-z]")
# Prefixes in front of a line's own text, each matched at the line's start only and
# each with bounded repetition, so no line can make them backtrack.
_PREFIXES = tuple(
    re.compile(p)
    for p in (
        # ISO time: GitHub Actions, Azure, docker logs -t, kubectl --timestamps,
        # journalctl -o short-iso; GitLab's "00O+" stream marker after it.
        r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?"
        r"(?:Z|[+-]\d\d:?\d\d)?\s{1,40}(?:\d\d[OE]\+?\s)?",
        # Locust's "[2023-02-15 10:00:00,123]", a pasted "[…]", kubectl --prefix.
        r"\[[^\]\n]{0,200}\]:?\s{0,40}",
        # Locust's logger: "host/INFO/locust.main: ", "host INFO/root: ".
        r"\S{0,255}[/ ]?(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)/[\w.]{1,200}:\s?",
        # syslog / journald: "Dec  4 10:00:00 host locust[123]: ".
        r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S{1,255} [^\s:]{1,255}:\s",
        r"\S{1,255} [^\s\[\]:]{1,255}\[\d{1,10}\]:\s",  # "host locust[123]: "
        r"[\w.-]{1,100}[-_]\d{1,4}\s{1,40}\|\s?",  # docker compose "locust-1  | "
        r"\d\d:\d\d:\d\d(?:[.,]\d{1,9})?\s{1,40}",  # Jenkins timestamper
        r">\s?",  # a quoted paste
    )
)
_MAX_PREFIXES = 8  # prefixes stacked in front of one line, at most


def plain(line: str) -> str:
    """The line without ANSI colours and the prefixes loggers and CI systems add."""
    line = _ANSI.sub("", line)
    for _ in range(_MAX_PREFIXES):
        for prefix in _PREFIXES:
            m = prefix.match(line)
            if m is not None and m.end() > 0:
                line = line[m.end() :]
                break
        else:
            break
    return line
