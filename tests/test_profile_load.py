"""A load profile is refused at profile load, with every problem of every file named."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshstack.loadprofile import LATENCY_QUANTILES, RESOLUTION_SECONDS
from meshstack.profile import ProfileError, load_profile
from meshstack.providers.load_locust import locust_argv, read_load_profile
from meshstack.providers.slo_prometheus import checks_for
from meshstack.providers.slo_promql import Objectives

ROOT = Path(__file__).resolve().parents[1]

SOUND: dict[str, Any] = {
    "name": "sound",
    "locustfile": "paced_locust.py",
    "app": "webdemo",
    "rate": 20,
    "users": 20,
    "duration": 50,
    "ramp": 5,
    "steady": 40,
    "min_sample": 600,
    "tolerance": 0.05,
    "slo": {
        "selector": {"namespace": "webdemo", "direction": "inbound"},
        "success_rate": 0.99,
        "latency_ms": {"p95": 50, "p99": 100},
    },
}


class Lab:
    """A stack profile in ``stacks/`` naming load profiles in ``loadprofiles/``."""

    def __init__(self, root: Path) -> None:
        self.stack = root / "stacks" / "lab.yaml"
        self.loads = root / "loadprofiles"
        self.stack.parent.mkdir()
        self.loads.mkdir()
        (self.loads / "paced_locust.py").write_text("# a locustfile stand-in\n")

    def write(self, name: str, text: str) -> Path:
        (self.loads / f"{name}.yaml").write_text(text)
        return self.loads / f"{name}.yaml"

    def profile(self, name: str, **over: Any) -> Path:
        """A sound load profile with ``over`` laid on it (None removes a key)."""
        data = {**SOUND, "name": name, **over}
        return self.write(
            name, yaml.safe_dump({k: v for k, v in data.items() if v is not None})
        )

    def refusal(self, *names: str, extra: str = "") -> str:
        """The loader's message for a stack profile naming ``names``."""
        self.stack.write_text(
            f"name: lab\n{extra}layers:\n  load:\n    provider: locust\n"
            f"    profiles: [{', '.join(names)}]\n"
        )
        with pytest.raises(ProfileError) as err:
            load_profile(self.stack)
        return str(err.value)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """An empty lab folder to write profiles into."""
    return Lab(tmp_path)


def problem_lines(message: str) -> list[str]:
    return [line.strip() for line in message.splitlines()[1:]]


def slo(**over: Any) -> dict[str, Any]:
    return {**SOUND["slo"], **over}


def test_misspelt_keys_are_refused_with_the_key_path_and_the_nearest_known_key(
    lab: Lab,
) -> None:
    file = lab.profile("typos", stedy=40, tolerence=0.1, slo=slo(sucess_rate=0.9))

    message = lab.refusal("typos")

    assert f"{file}: stedy: unknown key; did you mean steady?" in message
    assert f"{file}: tolerence: unknown key; did you mean tolerance?" in message
    assert f"{file}: slo.sucess_rate: unknown key; did you mean success_rate?" in (
        message
    )
    assert "3 problem(s)" in message


def test_slo_objectives_the_slo_layer_cannot_judge_are_refused(lab: Lab) -> None:
    file = lab.profile(
        "objectives",
        slo=slo(
            latency_ms={"p59": 10, "p99": "fast"},
            declared_failures=[{"name": "poop", "value": "GET /x", "failure_rate": 1}],
            success_rate="high",
        ),
    )

    lines = problem_lines(lab.refusal("objectives"))

    assert f"{file}: slo.success_rate: expected float, found 'high'" in lines
    assert f"{file}: slo.latency_ms.p99: expected float, found 'fast'" in lines
    assert any(
        line.startswith(f"{file}: slo.latency_ms.p59: unknown key")
        and "known keys: p95, p99" in line
        for line in lines
    ), lines
    assert f"{file}: slo.declared_failures[0].label: required str is missing" in lines
    assert len(lines) == 4


def test_a_selector_must_name_labels_as_strings(lab: Lab) -> None:
    empty = lab.profile("empty", slo=slo(selector={}))
    numeric = lab.profile("numeric", slo=slo(selector={"port": 4191}))

    lines = problem_lines(lab.refusal("empty", "numeric"))

    assert f"{empty}: slo.selector: expected a non-empty dict, found {{}}" in lines
    assert f"{numeric}: slo.selector.port: expected str, found 4191" in lines


@pytest.mark.parametrize(
    ("key", "yaml_value", "path", "found"),
    [
        ("rate", ".nan", "rate", "nan"),
        ("duration", ".inf", "duration", "inf"),
        (
            "slo",
            "{selector: {a: b}, latency_ms: {p95: .inf}}",
            "slo.latency_ms.p95",
            "inf",
        ),
        ("slo", "{selector: {a: b}, success_rate: .nan}", "slo.success_rate", "nan"),
    ],
    ids=["rate nan", "duration inf", "latency inf", "success_rate nan"],
)
def test_nan_and_infinite_numbers_are_refused_as_not_finite(
    lab: Lab, key: str, yaml_value: str, path: str, found: str
) -> None:
    text = yaml.safe_dump({k: v for k, v in SOUND.items() if k != key})
    file = lab.write("odd", f"{text}{key}: {yaml_value}\n")

    message = lab.refusal("odd")

    assert f"{file}: {path}: expected a finite number, found {found}" in message
    assert "write a number" in message


def test_a_steady_window_longer_than_the_run_is_refused(lab: Lab) -> None:
    longer = lab.profile("longer", duration=30, ramp=5, steady=40)
    past = lab.profile("past", duration=50, ramp=15, steady=40)

    message = lab.refusal("longer", "past")

    assert (
        f"{longer}: steady: ramp (5 s) + steady (40 s) is longer than duration (30 s)"
    ) in message
    assert f"{past}: steady: ramp (15 s) + steady (40 s) is longer than" in message
    assert "lengthen duration to 55 s" in message


def test_a_ramp_that_leaves_no_steady_window_is_refused(lab: Lab) -> None:
    file = lab.profile("allramp", duration=50, ramp=50, steady=None)

    message = lab.refusal("allramp")

    assert f"{file}: ramp: 50 s leaves no steady window in duration (50 s)" in message


def test_shares_above_one_are_refused_naming_the_value(lab: Lab) -> None:
    file = lab.profile(
        "shares",
        tolerance=5,
        slo=slo(
            success_rate=1.2,
            declared_failures=[
                {"name": "x", "label": "rt_route", "value": "v", "failure_rate": 2}
            ],
        ),
    )

    lines = problem_lines(lab.refusal("shares"))

    share = "(a share: 0.99 is 99%)"
    assert f"{file}: tolerance: expected <= 1, found 5 {share}" in lines
    assert f"{file}: slo.success_rate: expected <= 1, found 1.2 {share}" in lines
    assert (
        f"{file}: slo.declared_failures[0].failure_rate: expected <= 1, found 2 {share}"
    ) in lines


def test_a_window_too_short_for_its_tolerance_is_refused(lab: Lab) -> None:
    file = lab.profile("blurred", duration=12, ramp=2, steady=10, min_sample=100)

    message = lab.refusal("blurred")

    assert f"{file}: steady: 10 s cannot resolve a tolerance of 5%" in message
    assert f"steady x tolerance >= {RESOLUTION_SECONDS}" in message


def test_a_minimum_sample_the_window_cannot_hold_is_refused(lab: Lab) -> None:
    file = lab.profile("greedy", min_sample=5000)

    message = lab.refusal("greedy")

    assert f"{file}: min_sample: 5000 requests is more than the window" in message
    assert "840 at 20 rps over 40 s" in message


def test_every_problem_of_every_file_is_reported_in_one_error(lab: Lab) -> None:
    typo = lab.profile("typo", stedy=40)
    nan = lab.write("nan", yaml.safe_dump({**SOUND, "rate": math.nan}))
    lab.write("notyaml", "name: [\n")
    lab.profile("sound")

    message = lab.refusal(
        "typo", "nan", "nosuch", "notyaml", "sound", extra="bogus: 1\n"
    )

    lines = problem_lines(message)
    assert message.splitlines()[0] == (
        f"{lab.stack}: 5 problem(s) in the profile and its load profiles:"
    )
    assert lines[0].startswith(f"{lab.stack}: bogus: unknown key")
    assert lines[1].startswith(f"{typo}: stedy: unknown key")
    assert lines[2].startswith(f"{nan}: rate: expected a finite number, found nan")
    assert lines[3].startswith(f"{lab.loads / 'nosuch.yaml'}: no such profile")
    assert re.match(
        rf"{re.escape(str(lab.loads / 'notyaml.yaml'))}:2:1: not valid", lines[4]
    )
    assert not any("sound.yaml" in line for line in lines)


def test_the_run_time_reader_reports_what_the_loader_reports_a_line_each(
    lab: Lab,
) -> None:
    lab.profile("twice", tolerence=0.1, duration=30, slo=slo(success_rate=2))
    at_load = problem_lines(lab.refusal("twice"))

    with pytest.raises(ProfileError) as err:
        read_load_profile(lab.loads, "twice")

    at_run = problem_lines(str(err.value))
    assert at_run == at_load
    assert len(at_run) == 3
    assert "; " not in str(err.value).splitlines()[0]


def test_the_steady_window_defaults_to_what_the_ramp_leaves(lab: Lab) -> None:
    lab.profile("defaulted", duration=50, ramp=8, steady=None)

    profile = read_load_profile(lab.loads, "defaulted")

    assert profile["steady"] == 42
    assert profile["locustfile"] == str(lab.loads / "paced_locust.py")


def test_a_missing_locustfile_is_named_with_the_folder_it_was_looked_for_in(
    lab: Lab,
) -> None:
    file = lab.profile("lost", locustfile="nosuch_locust.py")

    message = lab.refusal("lost")

    assert (
        f"{file}: locustfile: expected a file relative to {lab.loads}, found "
        "'nosuch_locust.py', which does not exist"
    ) in message


@pytest.mark.parametrize("stack", sorted((ROOT / "stacks").glob("*.yaml")), ids=str)
def test_the_shipped_profiles_and_their_load_profiles_validate(stack: Path) -> None:
    profile = load_profile(stack)

    assert set(profile.load_profiles) == set(profile.layers["load"]["profiles"])
    for load in profile.load_profiles.values():
        assert load["ramp"] + load["steady"] <= load["duration"]
        assert Path(load["locustfile"]).is_file()


@pytest.mark.parametrize("name", ["emojivoto", "webdemo"])
def test_a_shipped_load_profile_reads_as_its_consumers_read_it(name: str) -> None:
    profile = read_load_profile(ROOT / "loadprofiles", name)

    objectives = Objectives.from_profile(profile["slo"])
    judged = {c[0] for c in checks_for(objectives, None)}
    assert {f"latency_{q}" for q in profile["slo"]["latency_ms"]} <= judged
    argv = locust_argv("python", profile, "http://127.0.0.1:1", Path("out"))
    assert argv[argv.index("-u") + 1] == str(profile["users"])


def test_the_latency_quantiles_accepted_are_exactly_those_the_slo_layer_judges() -> (
    None
):
    candidates = ("p50", "p90", "p95", "p99", "p999")
    objectives = Objectives.from_profile(
        {"selector": {"a": "b"}, "latency_ms": {q: 1.0 for q in candidates}}
    )

    judged = [c[0] for c in checks_for(objectives, None) if c[0].startswith("latency")]

    assert judged == [f"latency_{q}" for q in LATENCY_QUANTILES]
