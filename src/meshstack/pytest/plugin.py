"""The meshstack pytest plugin: options, the stack's life, gating and outcomes.

The stack is built (or attached to) once per run, in the run's main process, before
any worker starts: under pytest-xdist the controller does it in
``pytest_sessionstart`` and the workers attach through the state file. Every
layer's health is recorded there, so gating never depends on which worker ran what
(pytest-dependency only orders checks inside one layer, whose suite runs in one
xdist group). The main process also removes the stack at the end, after a failure
or Ctrl-C included.

The plugin engages only when the run collects from the harness's ``suites/``
folder, so self-tests and unrelated projects are left alone.
"""

from __future__ import annotations

import logging
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from meshstack import analyzers, clock
from meshstack.bundle import Bundle
from meshstack.profile import ProfileError, load_profile
from meshstack.pytest import options, outcome, reporting
from meshstack.pytest.handle import StackHandle
from meshstack.pytest.judge import judge
from meshstack.stack import Stack
from meshstack.state import RunLock, StackState, StateError
from meshstack.verdicts import LAYERS, Verdict, recorded_finding

log = logging.getLogger(__name__)

SESSION = pytest.StashKey["MeshstackRun"]()
# The runs whose main process is this one (a pytester run nests a second).
_CURRENT: list[MeshstackRun] = []


class MeshstackRun:
    """Everything the plugin keeps for one run, in the process that holds it."""

    def __init__(self, config: pytest.Config, settings: options.Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = hasattr(config, "workerinput")
        # Names this pytest session to its workers (see Stack.session).
        self.session_id = (
            str(config.workerinput.get("meshstack_session", ""))  # type: ignore[attr-defined]
            if self.worker
            else f"{clock.utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        )
        self.lock: RunLock | None = None
        self.stack: Stack | None = None
        self.started = clock.monotonic()
        self.blocked_skips = 0
        self.dependency_skips: list[str] = []
        self.passed: set[str] = set()
        self.reported: set[str] = set()
        self.harness_problems: list[str] = []
        self.removed = False

    def progress(self, layer: str, step: str) -> None:
        elapsed = clock.monotonic() - self.started
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        line = f"[meshstack] {layer:<8} {step} ({elapsed:6.1f}s)"
        if tr is not None and not self.worker:
            tr.write_line(line)
        log.info("%s", line)


def _engaged(config: pytest.Config) -> bool:
    """True when the run collects from ``<rootdir>/suites``."""
    suites = (Path(config.rootpath) / "suites").resolve()
    if not suites.is_dir():
        return False
    args = config.args or [str(config.rootpath)]
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        path = (
            path if path.is_absolute() else Path(config.invocation_params.dir) / path
        ).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for layer in LAYERS:
        config.addinivalue_line("markers", f"{layer}: a check of the {layer} layer")
    if not _engaged(config):
        return
    settings = options.resolve(config)
    # Keep every layer's checks on one worker: dependency chains never span workers.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    run = MeshstackRun(config, settings)
    config.stash[SESSION] = run
    if run.worker:
        # xdist derives a worker's grouping from its own arguments, which do not
        # carry the controller's choice: take it from the controller.
        if config.workerinput.get("meshstack_loadgroup"):  # type: ignore[attr-defined]
            config.option.loadgroup = True
        return
    _prepare(run)
    _CURRENT.append(run)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker whether tests are scheduled by layer group."""
    if node.config.stash.get(SESSION, None) is not None:
        dist = getattr(node.config.option, "dist", "no")
        node.workerinput["meshstack_loadgroup"] = dist == "loadgroup"
        node.workerinput["meshstack_session"] = node.config.stash[SESSION].session_id


def _prepare(run: MeshstackRun) -> None:
    s = run.settings
    try:
        profile = load_profile(s.profile)
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    lock = RunLock(s.state)
    try:
        lock.acquire()
        state = StackState.load(s.state)
    except StateError as exc:
        raise pytest.UsageError(str(exc)) from None
    run.lock = lock
    if s.mode == "existing" and not state.exists and not _attachable(profile.layers):
        lock.release()
        raise pytest.UsageError(
            f"no stack to attach to: {s.state} records none and {s.profile} names no "
            "endpoints to attach to; pass --stack=fresh to build one"
        )
    if s.mode == "fresh" and state.exists:
        lock.release()
        raise pytest.UsageError(
            f"{s.state} records a stack kept by run {state.run_id}; attach to it with "
            "--stack=existing, remove it with `meshstack down`, "
            "or pass another --stack-state"
        )
    run.stack = Stack(
        profile,
        s.mode,
        s.state,
        keep=s.keep,
        progress=run.progress,
        session=run.session_id,
    )


def _attachable(layers: dict[str, dict[str, Any]]) -> bool:
    return any(section.get("attach") for section in layers.values())


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    run = session.config.stash.get(SESSION, None)
    if run is None:
        return
    if run.worker:
        # Validated again here: the schemas also fill in the settings' defaults.
        run.stack = Stack(
            load_profile(run.settings.profile),
            "existing",
            run.settings.state,
            session=run.session_id,
        )
        _record_bundle(run.stack)
        return
    if session.config.option.collectonly:
        return
    _install_sigterm()
    assert run.stack is not None
    if run.stack.profile.local_root is not None:
        run.progress("local", "starting the local stack (reused if up)")
        from meshstack.local import launcher
        from meshstack.local.env import LocalStackError

        try:
            launcher.ensure_up(run.stack.profile.local_root, progress=run.progress)
        except LocalStackError as exc:
            # Nothing of this run exists yet; the local stack took back what it
            # started. pytest releases the run lock as it unconfigures.
            raise pytest.UsageError(f"the local stack could not start: {exc}") from None
    run.stack.begin()
    run.progress("run", f"{run.stack.state.run_id} ({run.settings.mode})")
    _record_bundle(run.stack)
    try:
        run.stack.up()
    except BaseException:
        # pytest does not finish a session whose start was interrupted: remove
        # what was made here, or Ctrl-C during provisioning would strand it.
        run.progress("run", "interrupted while building: removing what was made")
        _remove_stack(run)
        if run.lock is not None:
            run.lock.release()
        raise


def _remove_stack(run: MeshstackRun) -> None:
    """Tear down what this run made (once), unless asked to keep it."""
    if run.removed or run.settings.keep or run.stack is None or run.stack.keep:
        return
    run.removed = True
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        left = run.stack.down()
    finally:
        signal.signal(signal.SIGINT, previous)
    if left:
        run.harness_problems.append("teardown left: " + "; ".join(left))


def _record_bundle(stack: Stack) -> None:
    """Keep every artifact this run judges, for `meshstack analyze` to re-judge."""
    bundle_dir = stack.context().bundle_dir
    if bundle_dir is not None:
        analyzers.set_recorder(Bundle(bundle_dir).record)


def _install_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so a cancelled CI job still removes its stack."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.stash.get(SESSION, None) is None:
        return
    suites = (Path(config.rootpath) / "suites").resolve()
    for item in items:
        layer = layer_of(item, suites)
        if layer is None:
            continue
        item.add_marker(getattr(pytest.mark, layer))
        item.add_marker(pytest.mark.xdist_group(name=layer))


def layer_of(item: pytest.Item, suites: Path) -> str | None:
    try:
        rel = Path(item.path).resolve().relative_to(suites)
    except ValueError:
        return next((m.name for m in item.iter_markers() if m.name in LAYERS), None)
    return rel.parts[0] if rel.parts and rel.parts[0] in LAYERS else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    run = item.config.stash.get(SESSION, None)
    if run is None or run.stack is None:
        return
    layer = layer_of(item, (Path(item.config.rootpath) / "suites").resolve())
    if layer is None:
        return
    run.stack.state.reload_health()
    block = run.stack.blocked(layer)
    if block is not None:
        pytest.skip(block.message(layer))
    if _not_built(run, layer):
        # Every check of the layer reports why it could not be built (see
        # pytest_pyfunc_call); a check that depends on another of the layer must
        # say the same, not that its dependency failed.
        item.own_markers = [
            m
            for m in item.own_markers
            if not (m.name == "dependency" and m.kwargs.get("depends"))
        ]


def _not_built(run: MeshstackRun, layer: str) -> bool:
    assert run.stack is not None
    rec = run.stack.state.health.get(layer)
    if not rec:
        return False
    return bool((rec.get("details") or {}).get("stage") == "building")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A check of a layer that could not be built reports why, once per check,
    instead of probing a layer that is not there (which would only say that
    nothing was provisioned)."""
    run = pyfuncitem.config.stash.get(SESSION, None)
    if run is None or run.stack is None:
        return None
    layer = layer_of(
        pyfuncitem, (Path(pyfuncitem.config.rootpath) / "suites").resolve()
    )
    if layer is None or not _not_built(run, layer):
        return None
    judge(recorded_finding(run.stack.state.health[layer]))
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome_ = yield
    outcome.adjust(outcome_.get_result(), call)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Seen in the main process for every worker: count kinds of skips."""
    run = _main_run(report)
    if run is None:
        return
    run.reported.add(report.nodeid)
    if report.passed and report.when == "call":
        run.passed.add(report.nodeid)
    if report.skipped:
        message = outcome.skip_message(report)
        if message.startswith("BLOCKED"):
            run.blocked_skips += 1
        elif outcome.is_dependency_skip(message):
            run.dependency_skips.append(f"{report.nodeid}: {message}")


def _main_run(report: pytest.TestReport) -> MeshstackRun | None:
    return _CURRENT[-1] if _CURRENT else None


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(SESSION, None)
    analyzers.set_recorder(None)
    if run is not None and run in _CURRENT:
        _CURRENT.remove(run)
        if run.lock is not None:
            run.lock.release()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(SESSION, None)
    if run is None or run.worker or run.stack is None:
        return
    try:
        # What the workers recorded (the measurements' verdicts), read before the
        # removal of a fresh stack takes the state file away.
        run.stack.state.reload_health()
        _remove_stack(run)
        run.harness_problems += outcome.dependency_problems(
            run.dependency_skips, run.passed
        )
        alluredir = session.config.getoption("allure_report_dir", None)
        if alluredir:
            run.harness_problems += reporting.finish_allure(Path(alluredir), run)
    finally:
        run.stack.forget_once()
        if run.lock is not None:
            run.lock.release()
    if _unjudged_failure(run) or run.harness_problems:
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _unjudged_failure(run: MeshstackRun) -> bool:
    """A layer is unhealthy although no test reported it (only blocked skips ran)."""
    assert run.stack is not None
    return (
        any(
            rec["verdict"] not in (Verdict.PASS, Verdict.WARN)
            for rec in run.stack.state.health.values()
        )
        and run.blocked_skips > 0
    )


def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    run = config.stash.get(SESSION, None)
    if run is None or run.worker or run.stack is None:
        return
    reporting.terminal_summary(terminalreporter, run)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> StackHandle:
    """The stack under test, built or attached once per run (see --stack)."""
    run = request.config.stash.get(SESSION, None)
    if run is None or run.stack is None:
        raise pytest.UsageError(
            "the stack fixture is only available to checks under suites/ "
            "(run pytest on the suites folder)"
        )
    return StackHandle(run.stack)
