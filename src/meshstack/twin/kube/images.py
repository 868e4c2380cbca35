"""The image map: which Python module stands in for which container image.

Every ``meshstack/twin/images/*.yaml`` file is a list of entries
``{image: <repository>, module: <python module>, args: [...]}``. A container's
image matches an entry by repository, whatever its tag or digest (the tag is
passed to the process as ``MESHSTACK_IMAGE_TAG``); ``docker.io/`` and
``docker.io/library/`` prefixes are optional, as they are for a container runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageEntry:
    image: str
    module: str
    args: tuple[str, ...] = ()
    source: str = ""


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; tag "latest" when none is given."""
    ref, _, digest = image.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        repo, tag = ref[:colon], ref[colon + 1 :]
    else:
        repo, tag = ref, "latest"
    return _normal(repo), digest or tag


def _normal(repo: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
            break
    return repo.removeprefix("library/")


class ImageMap:
    def __init__(self, entries: list[ImageEntry]) -> None:
        self._by_repo = {_normal(e.image): e for e in entries}

    @classmethod
    def load(cls, directory: Path | None = None) -> ImageMap:
        """Every entry of every YAML file in the twin's images directory."""
        root = directory or Path(
            str(resources.files("meshstack.twin").joinpath("images"))
        )
        entries: list[ImageEntry] = []
        for path in sorted(root.glob("*.yaml")):
            for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
                entries.append(
                    ImageEntry(
                        image=str(item["image"]),
                        module=str(item["module"]),
                        args=tuple(str(a) for a in item.get("args") or []),
                        source=path.name,
                    )
                )
        log.debug("image map: %d entries from %s", len(entries), root)
        return cls(entries)

    def resolve(self, image: str) -> tuple[ImageEntry, str] | None:
        repo, tag = split_image(image)
        entry = self._by_repo.get(repo)
        return (entry, tag) if entry else None
