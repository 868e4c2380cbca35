"""A provider for the plugin's self-tests: it builds nothing, and says what it did.

Each call (provision, probe, teardown) is appended as one JSON line to the file
named by the ``journal`` setting, with the process id and xdist worker, so a test
can count how often the stack was built and by whom. ``verdict`` and ``reasons``
settings choose what its probe reports; ``provision_fails`` (a reason code) makes
provisioning fail with it, as a refused credential or an unreachable API would.
``teardown_fails`` makes removal raise, as for a layer whose servers are gone.
``judged_again_after`` names a later layer, as the mesh names the apps; once that
layer is built, the probe adds the ``reasons_after`` codes.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from meshstack.providers.base import Provider, ProviderError
from meshstack.verdicts import Finding


class SelfTestProvider(Provider):
    layer = "any"

    @property
    def layer_name(self) -> str:
        return str(self.settings["layer"])

    def _journal(self, event: str) -> None:
        line = {
            "layer": self.layer_name,
            "event": event,
            "pid": os.getpid(),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        }
        with open(self.settings["journal"], "a") as fh:
            fh.write(json.dumps(line) + "\n")

    @property
    def state(self) -> Any:
        return self.ctx.state(self.layer_name)

    @property
    def judged_again_after(self) -> str | None:
        return self.settings.get("judged_again_after")

    def provision(self) -> None:
        self._journal("provision")
        failing = self.settings.get("provision_fails")
        if failing:
            f = Finding(layer=self.layer_name)
            f.add(failing, f"self-test provisioning fails with {failing}")
            raise ProviderError(f, f"{self.layer_name}: {failing}")
        self.ctx.record(self.layer_name, "thing", f"{self.layer_name}-1")
        time.sleep(float(self.settings.get("delay", 0)))
        self.state.outputs["made"] = True
        self.ctx.save()

    def probe(self) -> Finding:
        self._journal("probe")
        f = Finding(layer=self.layer_name)
        codes = list(self.settings.get("reasons", []))
        after = self.judged_again_after
        if after and self.ctx.outputs(after).get("made"):
            codes += self.settings.get("reasons_after", [])
        for code in codes:
            f.add(code, f"self-test says {code}")
        return f

    def teardown(self) -> None:
        self._journal("teardown")
        if self.settings.get("teardown_fails"):
            raise RuntimeError(f"{self.layer_name}: its servers are gone")
        self.ctx.forget(self.layer_name, "thing", f"{self.layer_name}-1")


PROVIDER = SelfTestProvider
