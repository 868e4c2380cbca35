"""Finding JSON documents inside captured text, cut-off ones included.

A capture rarely holds bare JSON: a shell prompt, a ``curl`` line or log text sits
around the documents, several documents may follow one another (``curl`` in a
loop), and the last one may be cut off. :func:`json_values` returns every JSON
object or array in such text and closes a cut-off last document at its last
complete value. Every step is bounded (tries, failures, values, size) so that no
text, however long or hostile, makes it slow.

The ZeroTier member and CLI analyzers, the ip-link analyzer and the OpenStack error
analyzer read their JSON through it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

# Salvaging a cut-off document tries at most this many cut points, newest first.
_SALVAGE_TRIES = 200
_SALVAGE_MAX_CHARS = 2_000_000
# A failed parse costs up to the text's length (the json module counts the lines
# before the error), so after this many failures the rest of the text is not
# searched: a megabyte of '["x' or "[1,[1," stays linear.
# TODO: a capture with more than this many JSON-looking starts that are not JSON
# before the JSON it is read for loses the documents after them (a ZeroTier member
# there is judged as not found); no real capture seen does, and raising the bound
# costs a megabyte scan each.
_MAX_FAILURES = 200
# Likewise, no capture holds more documents than this (a ZeroTier member list is
# one).
_MAX_VALUES = 10_000


def json_values(text: str) -> tuple[list[Any], bool]:
    """Every JSON object or array in ``text``, and whether the last one was cut off.

    Text around the documents (a shell prompt, a ``curl`` line) is skipped. A
    document cut off at the end of the text is closed at its last complete value
    and returned too, with the second element True.
    """
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos, failures = 0, 0
    end = len(text.rstrip().rstrip(".…").rstrip())
    for m in _OPEN.finditer(text):
        if m.start() < pos:
            continue
        try:
            value, pos = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError as err:
            if _ran_out(end, err) and (salvaged := _salvage(text[m.start() :])):
                values.append(salvaged)
                return values, True
            failures += 1
        except RecursionError:  # "[[[[..." nested deeper than Python's stack
            failures += 1
        else:
            values.append(value)
        if failures > _MAX_FAILURES or len(values) > _MAX_VALUES:
            log.debug(
                "stopped reading JSON: %d values, %d failures", len(values), failures
            )
            break
    return values, False


# Where a JSON object or array can start: an opening bracket followed by what
# JSON allows next. "[INFO]", "{{" and empty "[]"/"{}" (which no caller reads)
# never reach the parser.
_OPEN = re.compile(r"[{\[](?=[ \t\r\n]*[\"\[{\-0-9tfn])")


def _ran_out(end: int, err: json.JSONDecodeError) -> bool:
    """True when the parser failed because the text ended, not on bad syntax.

    ``end`` is where the text's content ends (trailing blanks and an ellipsis
    left out).
    """
    return err.pos >= end - 8 or err.msg.startswith("Unterminated string")


def _salvage(doc: str) -> Any:
    """The longest prefix of a cut-off document that parses once closed, or None."""
    if len(doc) > _SALVAGE_MAX_CHARS:
        return None
    cuts: list[tuple[int, str]] = []
    closers: list[str] = []
    in_string = escaped = False
    for i, ch in enumerate(doc):
        if in_string:
            escaped, in_string = _string_step(ch, escaped)
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]" and closers:
            closers.pop()
            cuts.append((i + 1, "".join(reversed(closers))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(closers))))
    for end, tail in reversed(cuts[-_SALVAGE_TRIES:]):
        try:
            value = json.loads(doc[:end] + tail)
        except (ValueError, RecursionError):
            continue
        return value if value else None
    return None


def _string_step(ch: str, escaped: bool) -> tuple[bool, bool]:
    """(escaped, still inside the string) after reading ``ch`` inside a string."""
    if escaped:
        return False, True
    if ch == "\\":
        return True, True
    return False, ch != '"'
