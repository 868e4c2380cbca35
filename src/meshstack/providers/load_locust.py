"""The load layer: Locust, run as its own process, at the rate a load profile names.

Locust is never imported here: as a library it patches the interpreter with gevent,
which must not happen inside pytest. Each run is ``<python> -m locust --headless``
with the profile's users and run time, statistics written to CSV once a second
(``--csv-full-history`` keeps a row per request name as well as the total), and
``--exit-code-on-error 0``: a failed request is evidence for the objectives, not a
reason for Locust to exit non-zero. A non-zero exit therefore means the process
itself had a problem.

The steady window is taken from Locust's own stats history: from ``ramp`` seconds
after its first row, ``steady`` seconds long (epoch seconds, the same clock
Prometheus uses). The achieved rate over it is judged by the ``locust-history``
analyzer; the log by ``locust-log`` (refused options, crashes, a CPU-starved
generator). Everything Locust wrote is kept as artifacts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from meshstack import analyzers, clock
from meshstack.analyzers import Context, Evidence
from meshstack.profile import DIRECTORY, raise_for, read_load_file
from meshstack.providers.base import Provider
from meshstack.providers.locust_csv import counts_at, window_of
from meshstack.verdicts import Finding, Verdict, harness_error, merge

log = logging.getLogger(__name__)

# prctl(2) option: the signal a process gets when its parent ends. Looked up here,
# not in the forked child, where loading a library could deadlock.
PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl

SETTINGS_SCHEMA: dict[str, Any] = {
    "directory": {"type": "path", "default": DIRECTORY},
    "profiles": {"type": "list", "required": True, "items": {"type": "str"}},
    "python": {"type": "str", "default": ""},
    # app -> base URL, for a lab built by other means (else the apps layer's URL).
    "hosts": {"type": "dict", "default": {}},
    # --stack=existing: what a lab built by other means offers (the layer's outputs).
    "attach": {"type": "dict", "open": True, "keys": {}},
    # Seconds Locust may take beyond its run time to start and write its files.
    "grace_timeout": {"type": "seconds", "default": 60},
}


def read_load_profile(directory: Path, name: str) -> dict[str, Any]:
    """A load profile, validated as the stack profile's loader validates it.

    ``steady`` is defaulted and checked to fit; every problem is reported in one
    ``ProfileError`` (see :func:`meshstack.loadprofile.check_load_profile`).
    """
    file = directory / f"{name}.yaml"
    data, lines = read_load_file(
        file, f"add {file.name} to {directory}, or name another load profile"
    )
    raise_for(file, lines, "the load profile")
    return data


def _end_with_parent() -> None:
    """In the Locust child before exec: have the kernel send it SIGTERM when the
    process that started it ends, however it ends (a killed pytest or xdist
    worker cannot end its Locust itself)."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def locust_argv(
    python: str, profile: dict[str, Any], host: str, csv_prefix: Path, tail: int = 3
) -> list[str]:
    """The Locust command line for one run of a profile.

    A profile may add options of its own in ``locust_args`` (``--processes 2`` for
    a generator that needs more than one core); Locust judges them, and a refusal
    is reported as ``bad_cli_combination``.
    """
    run_time = int(profile["duration"]) + tail
    users = str(profile["users"])
    return [
        python, "-m", "locust", "--headless",
        "-f", profile["locustfile"],
        "--host", host,
        "-u", users, "-r", users,
        "--run-time", f"{run_time}s",
        "--csv", str(csv_prefix), "--csv-full-history",
        "--exit-code-on-error", "0",
        "--stop-timeout", "2",
        "--loglevel", "INFO",
        *[str(a) for a in profile.get("locust_args", [])],
    ]  # fmt: skip


class LocustLoad(Provider):
    """Runs a load profile's Locust against its app and judges the measurement."""

    layer = "load"

    def provision(self) -> None:
        """Nothing to build: Locust runs per measurement."""

    def teardown(self) -> None:
        """Nothing to remove: each run's process has ended when ``run`` returns."""

    @property
    def python(self) -> str:
        return self.settings.get("python") or sys.executable

    def probe(self) -> Finding:
        """Locust starts and prints its version."""
        argv = [self.python, "-m", "locust", "--version"]
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return harness_error(
                "load", "load_tool_failed", f"`{shlex.join(argv)}` hung"
            )
        if res.returncode != 0:
            return harness_error(
                "load",
                "load_tool_failed",
                f"`{shlex.join(argv)}` exited {res.returncode}: {res.stderr[-2000:]}; "
                "install the harness extras (pip install -e .[harness])",
            )
        return Finding(
            layer="load", kind="locust-version", evidence=[res.stdout.strip()]
        )

    def profile(self, name: str) -> dict[str, Any]:
        directory = self.ctx.path(self.settings.get("directory", DIRECTORY))
        return read_load_profile(directory, name)

    def artifacts_dir(self, name: str) -> Path:
        base = self.ctx.bundle_dir or (self.ctx.workdir / "artifacts")
        out = base / "load" / name
        out.mkdir(parents=True, exist_ok=True)
        return out

    def run(self, name: str, host: str | None = None) -> dict[str, Any]:
        """Run one profile's load; a JSON-ready record of the window and the verdict."""
        profile = self.profile(name)
        host = host or self._host(profile)
        out = self.artifacts_dir(name)
        argv = locust_argv(self.python, profile, host, out / "locust")
        started = clock.wall()
        code, log_text = self._execute(argv, profile, out)
        record = {
            "profile": name, "app": profile["app"], "host": host,
            "target_rps": float(profile["rate"]), "tolerance": profile["tolerance"],
            "min_sample": profile["min_sample"], "command": shlex.join(argv),
            "exit_code": code, "started": started, "ended": clock.wall(),
            "artifacts": str(out), "slo": profile["slo"],
        }  # fmt: skip
        finding = self._judge(profile, out, code, log_text, record)
        record["finding"] = finding.to_json()
        log.info("[load/%s] %s", name, finding.summary())
        return record

    def _host(self, profile: dict[str, Any]) -> str:
        given = (self.settings.get("hosts") or {}).get(profile["app"])
        if given:
            return str(given)
        apps = self.ctx.outputs("apps").get("apps", {})
        app = apps.get(profile["app"])
        if not app or not app.get("url"):
            raise KeyError(
                f"the apps layer offers no URL for {profile['app']!r} (offers "
                f"{sorted(apps)}); provision the apps layer first"
            )
        return str(app["url"])

    def _execute(
        self, argv: list[str], profile: dict[str, Any], out: Path
    ) -> tuple[int | None, str]:
        env = {
            **os.environ,
            "MESHSTACK_LOAD_RATE": str(profile["rate"]),
            "MESHSTACK_LOAD_USERS": str(profile["users"]),
        }
        limit = float(profile["duration"]) + float(
            self.settings.get("grace_timeout", 60)
        )
        log.debug("[load/%s] run: %s", profile["name"], shlex.join(argv))
        log_file = out / "locust.log"
        with open(log_file, "wb") as fh:
            proc = subprocess.Popen(
                argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=out,
                stdin=subprocess.DEVNULL, preexec_fn=_end_with_parent,
            )  # fmt: skip
            try:
                code: int | None = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                code = None
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM): a load left running would go on
                # loading the app, into the next run's window.
                proc.kill()
                proc.wait(timeout=10)
                raise
        return code, log_file.read_text(errors="replace")

    def _judge(
        self,
        profile: dict[str, Any],
        out: Path,
        code: int | None,
        log_text: str,
        record: dict[str, Any],
    ) -> Finding:
        ctx = Context(
            target_rps=float(profile["rate"]),
            tolerance=float(profile["tolerance"]),
            min_sample=int(profile["min_sample"]),
        )
        history = out / "locust_stats_history.csv"
        # Through the registry, so a live run records what it judged in its bundle.
        # The log is judged without the target rate: the history judges the rate,
        # and the log would only add that it cannot.
        log_ctx = Context(tolerance=ctx.tolerance, min_sample=ctx.min_sample)
        from_log = analyzers.get("locust-log").judge(
            Evidence(log_text, name="locust.log"), log_ctx
        )
        if "unrecognised_input" in from_log.reasons:
            # The log analyzer did not recognise what Locust printed (a bare
            # argparse line, an empty log): judge the process by its exit alone.
            from_log = Finding(layer="load", kind="locust-log")
            from_log.evidence.extend(log_text.strip().splitlines()[-5:])
        if code is None:
            from_log.add(
                "load_tool_failed",
                f"Locust did not exit within its run time plus the grace timeout; "
                f"it was killed. See {out / 'locust.log'}",
            )
        text = history.read_text(errors="replace") if history.exists() else ""
        window = window_of(text, float(profile["ramp"]), float(profile["steady"]))
        if window is None:
            return self._no_stats(from_log, code, out)
        record["window"] = {"start": window[0], "end": window[1],
                            "seconds": window[1] - window[0]}  # fmt: skip
        record["counts"] = counts_at(text, window)
        ctx.extra = {"window_start": window[0], "window_end": window[1]}
        from_history = analyzers.get("locust-history").judge(
            Evidence(text, name=str(history)), ctx
        )
        # The log's own sample check counts the whole run, ramp included: the
        # history's count over the steady window is the one that decides, and
        # its details (merged last) are the ones kept.
        from_log.reasons = [r for r in from_log.reasons if r != "min_sample"]
        return merge("load", [from_log, from_history], kind="locust-run")

    def _no_stats(self, from_log: Finding, code: int | None, out: Path) -> Finding:
        if code != 0 and from_log.verdict is not Verdict.HARNESS_ERROR:
            from_log.add(
                "load_tool_failed",
                f"Locust exited {code} and wrote no statistics history; "
                f"its log is {out / 'locust.log'}",
            )
        elif code == 0:
            from_log.add(
                "min_sample",
                "Locust exited 0 but its statistics history holds no row: nothing "
                "was measured",
            )
        from_log.details["exit_code"] = code
        return from_log


def finding_from_json(data: dict[str, Any]) -> Finding:
    """The finding a record carries (as ``Finding.to_json`` wrote it)."""
    return Finding(
        layer=data["layer"],
        reasons=list(data.get("reasons", [])),
        hints=list(data.get("hints", [])),
        evidence=list(data.get("evidence", [])),
        details=dict(data.get("details", {})),
        kind=data.get("kind", ""),
    )


PROVIDER = LocustLoad
