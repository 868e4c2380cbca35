"""Properties every analyzer keeps, whatever kind of evidence it judges.

The fixtures are every file (for directory kinds: every sub-directory) under
tests/analyzers/data/<kind>/, where <kind> is the registered kind the fixture is of;
their sources are described by each analyzer's own tests. The properties:

* no analyzer raises on arbitrary bytes, or on any fixture cut at any byte;
* no analyzer passes random bytes, whether named by kind or detected;
* a fixture that fails (FAIL, or INVALID-RUN for load evidence), cut at any line
  boundary after the last line of its evidence, still does not pass: the evidence
  an analyzer reports must be enough to show the failure;
* a fixture that passes is never a HARNESS-ERROR when its kind is named;
* every fixture is detected as its kind from its content under any file name.
"""

from __future__ import annotations

import functools
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence, Kind
from meshstack.verdicts import ALL_LAYERS, Finding, Verdict

DATA = Path(__file__).parent / "data"
# Verdicts whose cut copies must not pass: the failure is already in the lines kept.
FAILING = (Verdict.FAIL, Verdict.INVALID_RUN)
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Fixture:
    kind: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.path.name}"

    def evidence(self, name: str | None = None) -> Evidence:
        return Evidence.from_path(self.path, name=name)


@functools.cache
def all_kinds() -> dict[str, Kind]:
    return analyzers.kinds()


def _fixtures() -> list[Fixture]:
    out = []
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if not path.name.startswith((".", "README")):
                out.append(Fixture(folder.name, path))
    return out


FIXTURES = _fixtures()
FILE_FIXTURES = [f for f in FIXTURES if f.path.is_file()]
DIR_FIXTURES = [f for f in FIXTURES if f.path.is_dir()]


def judge(kind: str, evidence: Evidence, ctx: Context | None = None) -> Finding:
    finding = all_kinds()[kind].judge(evidence, ctx or Context())
    assert isinstance(finding, Finding)
    assert finding.layer in ALL_LAYERS
    return finding


@functools.cache
def full_verdict(fixture: Fixture) -> Verdict:
    return judge(fixture.kind, fixture.evidence()).verdict


def test_every_data_folder_is_named_after_a_registered_kind() -> None:
    folders = {p.name for p in DATA.iterdir() if p.is_dir()}

    assert folders - set(all_kinds()) == set()
    assert FIXTURES, "no fixtures found: the properties below would hold vacuously"


def test_every_kind_has_fixtures_to_be_held_to() -> None:
    with_fixtures = {f.kind for f in FIXTURES}

    assert set(all_kinds()) - with_fixtures == set()


@settings(PROPERTY, max_examples=500)
@given(data=st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode))
def test_no_analyzer_raises_on_or_passes_random_bytes(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    evidence = Evidence(text=text, name="random")

    for name, kind in all_kinds().items():
        if kind.directory:
            continue
        assert 0.0 <= kind.detect(evidence) <= 1.0
        assert judge(name, evidence).verdict is not Verdict.PASS, name
    assert analyzers.analyze(evidence, Context()).verdict is not Verdict.PASS


@settings(PROPERTY, max_examples=500)
@given(
    fixture=st.sampled_from(FILE_FIXTURES),
    where=st.floats(min_value=0.0, max_value=1.0),
)
def test_no_analyzer_raises_on_a_fixture_cut_at_any_byte(
    fixture: Fixture, where: float
) -> None:
    data = fixture.path.read_bytes()
    cut = data[: int(len(data) * where)]
    evidence = Evidence(text=cut.decode("utf-8", errors="replace"), name="cut")

    judge(fixture.kind, evidence)
    analyzers.analyze(evidence, Context())


@PROPERTY
@given(
    fixture=st.sampled_from(DIR_FIXTURES),
    pick=st.integers(min_value=0),
    where=st.floats(min_value=0.0, max_value=1.0),
)
def test_no_directory_analyzer_raises_when_one_of_its_files_is_cut(
    fixture: Fixture, pick: int, where: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    copy = tmp_path_factory.mktemp("cut") / fixture.path.name
    shutil.copytree(fixture.path, copy)
    files = sorted(p for p in copy.rglob("*") if p.is_file())
    victim = files[pick % len(files)]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * where)])

    judge(fixture.kind, Evidence.from_path(copy))
    analyzers.analyze(Evidence.from_path(copy), Context())


def _last_evidence_line(lines: list[str], finding: Finding) -> int | None:
    """The last file line holding an evidence line; None unless all are lines."""
    last = -1
    for wanted in (e.strip() for e in finding.evidence if e.strip()):
        found = [i for i, line in enumerate(lines) if wanted in line]
        if not found:
            return None
        last = max(last, found[0])
    return last if last >= 0 else None


def _lines(fixture: Fixture) -> list[str]:
    return fixture.path.read_text(encoding="utf-8", errors="replace").splitlines(
        keepends=True
    )


def _cuttable() -> list[tuple[Fixture, int]]:
    """Failing file fixtures whose evidence is all lines of the file, and the last."""
    out = []
    for fixture in FILE_FIXTURES:
        if full_verdict(fixture) not in FAILING:
            continue
        finding = judge(fixture.kind, fixture.evidence())
        last = _last_evidence_line(_lines(fixture), finding)
        if last is not None:
            out.append((fixture, last))
    return out


# Judged at collection, so each property below runs only on the fixtures it is about.
CUTTABLE = _cuttable()
PASSING = [f for f in FIXTURES if full_verdict(f) is Verdict.PASS]


def test_the_fixture_properties_have_fixtures_to_hold() -> None:
    assert len(CUTTABLE) >= 10, "too few failing fixtures with line evidence"
    assert len(PASSING) >= 10, "too few passing fixtures"


@pytest.mark.parametrize(("fixture", "last"), CUTTABLE, ids=[f.id for f, _ in CUTTABLE])
def test_a_failing_fixture_cut_after_its_evidence_still_does_not_pass(
    fixture: Fixture, last: int
) -> None:
    lines = _lines(fixture)

    for end in range(last + 1, len(lines) + 1):
        cut = Evidence(text="".join(lines[:end]), name=fixture.id)
        verdict = judge(fixture.kind, cut).verdict
        assert verdict is not Verdict.PASS, f"cut after line {end}: {verdict}"


@pytest.mark.parametrize("fixture", PASSING, ids=lambda f: f.id)
def test_a_passing_fixture_is_never_a_harness_error_when_its_kind_is_named(
    fixture: Fixture,
) -> None:
    named = analyzers.analyze(fixture.evidence(), Context(), kind=fixture.kind)

    assert named.verdict is not Verdict.HARNESS_ERROR, named.hints


# Names that say nothing, or the wrong thing, about what a file holds.
_MISLEADING_NAMES = ("notes", "artifact-0001.bin", "capture.json", "renamed.csv")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.id for f in FIXTURES])
def test_every_fixture_is_detected_as_its_kind_whatever_it_is_called(
    fixture: Fixture, tmp_path: Path
) -> None:
    for name in _MISLEADING_NAMES:
        _assert_detected_renamed(fixture, tmp_path, name)


_NAME = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=24)


@PROPERTY
@given(fixture=st.sampled_from(FIXTURES), name=_NAME)
def test_every_fixture_is_detected_as_its_kind_under_any_name(
    fixture: Fixture, name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if name in (".", ".."):
        name = "renamed"
    _assert_detected_renamed(fixture, tmp_path_factory.mktemp("renamed"), name)


def _assert_detected_renamed(fixture: Fixture, folder: Path, name: str) -> None:
    target = folder / name
    if fixture.path.is_dir():
        shutil.copytree(fixture.path, target)
    else:
        shutil.copyfile(fixture.path, target)

    found = analyzers.detect(Evidence.from_path(target, name=name))

    assert found is not None, f"{fixture.id} renamed {name!r}: no kind detected"
    assert found.name == fixture.kind, f"{fixture.id} renamed {name!r}"


# Nesting deeper than Python's recursion limit: JSON and YAML parsers recurse.
_DEEP = {
    "json arrays": "[" * 50_000,
    "json objects": '{"a":' * 20_000,
    "yaml sequences": "- " * 50_000,
    "yaml flow": "a: " + "[" * 50_000,
}


@pytest.mark.parametrize(
    "kind", sorted(k for k, v in all_kinds().items() if not v.directory)
)
@pytest.mark.parametrize("text", _DEEP.values(), ids=_DEEP.keys())
def test_input_nested_deeper_than_the_stack_is_judged_without_error(
    kind: str, text: str
) -> None:
    evidence = Evidence(text=text, name="deep")

    analyzers.get(kind).detect(evidence)

    assert analyzers.analyze(evidence, Context(), kind=kind).verdict is not Verdict.PASS
