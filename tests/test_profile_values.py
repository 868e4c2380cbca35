"""Values a schema cannot judge alone are refused at profile load, each named.

Each case lays one broken value over the shipped ``stacks/local.yaml`` and expects
the loader's usage error to name the key path and what was found, before anything
is built.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshstack.profile import ProfileError, load_profile

ROOT = Path(__file__).resolve().parents[1]
LOCAL = yaml.safe_load((ROOT / "stacks" / "local.yaml").read_text())


def _broken(tmp_path: Path, change: Any) -> Path:
    data = copy.deepcopy(LOCAL)
    data.pop("extends", None)
    data["layers"]["load"]["directory"] = str(ROOT / "loadprofiles")
    change(data["layers"])
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set(path: str, value: Any) -> Any:
    def change(layers: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = layers
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return change


CASES = [
    (_set("lb.pools.0.addresses", ["198.19.0.300-198.19.0.999"]),
     "layers.lb.pools[0].addresses[0]: expected a range of two addresses"),
    (_set("lb.pools.0.addresses", ["198.19.0.220-198.19.0.200"]),
     "layers.lb.pools[0].addresses[0]: expected the first address before the last"),
    (_set("lb.advertisements", [{"name": "a", "pools": ["no-such-pool"]}]),
     "layers.lb.advertisements[0].pools[0]: expected one of the pools "
     "(overlay-pool), found 'no-such-pool'"),
    (_set("overlay.network.pool_end", "198.19.1.99"),
     "layers.overlay.network.pool_end: expected an address in 198.19.0.0/24"),
    (_set("overlay.network.pool_end", "198.19.0.5"),
     "layers.overlay.network.pool_end: expected an address after pool_start"),
    (_set("slo.url", "127.0.0.1:9090"),
     "layers.slo.url: expected an http:// or https:// URL, found '127.0.0.1:9090'"),
    (_set("slo.scrape_interval", 0),
     "layers.slo.scrape_interval: expected"),
    (_set("apps.apps", [LOCAL["layers"]["apps"]["apps"][0]]),
     "webdemo.yaml: app: expected one of the apps layer's apps (emojivoto), "
     "found 'webdemo'"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "said"), CASES)
def test_a_value_the_schema_cannot_judge_is_refused_naming_its_key(
    tmp_path: Path, change: Any, said: str
) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(_broken(tmp_path, change))
    assert said in str(err.value), str(err.value)


def test_the_shipped_local_profile_passes_these_checks(tmp_path: Path) -> None:
    load_profile(_broken(tmp_path, lambda layers: None))


def test_an_unreadable_or_missing_load_profile_is_one_problem_each(
    tmp_path: Path,
) -> None:
    # No follow-on "app: expected one of the apps layer's apps, found None" for a
    # file that could not be read: each broken file is counted once.
    loads = tmp_path / "loadprofiles"
    loads.mkdir()
    (loads / "broken.yaml").write_text("rate: [unclosed\n")

    def change(layers: dict[str, Any]) -> None:
        layers["load"]["directory"] = str(loads)
        layers["load"]["profiles"] = ["broken", "absent"]

    with pytest.raises(ProfileError) as err:
        load_profile(_broken(tmp_path, change))
    message = str(err.value)
    assert ": 2 problem(s) in" in message, message
    assert "found None" not in message, message
