"""An issue's local images: listed once, copied wherever a build or a page needs them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..issue import Issue


@dataclass(frozen=True)
class Asset:
    source: Path  # the file in the issue folder
    name: str  # its path under build/<folder>/assets/, asset_url/<id>/ and the site


def issue_assets(issue: Issue) -> tuple[Asset, ...]:
    """Each local image of the issue once, in order of appearance."""
    seen: dict[str, Asset] = {}
    for image in issue.images:
        if image.asset and image.asset not in seen:
            seen[image.asset] = Asset(issue.folder / image.asset, image.asset)
    return tuple(seen.values())


def copy_assets(assets: tuple[Asset, ...], folder: Path) -> None:
    """Copy the assets under folder, keeping their relative paths."""
    for asset in assets:
        target = folder / asset.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(asset.source, target)
