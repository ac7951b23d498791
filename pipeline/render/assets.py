"""An issue's local images: listed once, and prepared for email wherever a build or a
page needs them.

Every reader downloads every image, many on a phone's data plan. So each image is
scaled down to twice the width it is shown at (sharp on high-density screens, no
larger), a format mail clients cannot show (WebP, AVIF: Outlook and older clients show
nothing) becomes PNG (when it has transparency) or JPEG, and PNG, JPEG and GIF are
re-encoded optimised, without their metadata (a phone photo's EXIF holds where it was
taken). The original stays in the issue folder. An animated image and an SVG are
copied as they are.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..issue import Image, Issue
from ..issue.files import oriented_size

BODY_WIDTH = 600  # px, the email's column on desktop: a header image
CONTENT_WIDTH = 550  # px, inside the 25 px side padding: an item's image
SHARPNESS = 2  # pixels per CSS pixel on the screens that have the most
EMAIL_FORMATS = ("PNG", "JPEG", "GIF")  # what every mail client shows
JPEG_QUALITY = 85
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif"}


@dataclass(frozen=True)
class Asset:
    source: Path  # the file in the issue folder
    name: str  # its path under build/<folder>/assets/, asset_url/<id>/ and the site
    max_width: int = 0  # pixels it is scaled down to; 0: copied as it is
    format: str = ""  # written as: PNG, JPEG or GIF; "": copied as it is


@dataclass(frozen=True)
class Prepared:
    """An asset as readers get it."""

    data: bytes
    size: tuple[int, int]  # width, height written; (0, 0) for a copied SVG
    before: tuple[int, int]  # the original's
    source_size: int  # bytes of the original

    @property
    def changed(self) -> bool:
        return self.size != self.before or len(self.data) != self.source_size


def shown_width(image: Image, issue: Issue) -> int:
    """The widest the email shows an image at, in CSS pixels."""
    column = BODY_WIDTH if image is issue.header_image else CONTENT_WIDTH
    return min(image.width, column) if image.width else column


def email_format(image: Image) -> str:
    """The format an image is written in for email, or "" to copy it as it is."""
    if image.format in EMAIL_FORMATS:
        return image.format
    if not image.format or image.format == "SVG":
        return ""
    return "PNG" if image.alpha else "JPEG"


def issue_assets(issue: Issue) -> tuple[Asset, ...]:
    """Each local image of the issue once, in order of appearance, with the width and
    format it is written in."""
    widths: dict[str, int] = {}
    firsts: dict[str, Image] = {}
    for image in issue.images:
        if image.asset:
            widths[image.asset] = max(widths.get(image.asset, 0), shown_width(image, issue))
            firsts.setdefault(image.asset, image)
    taken = set(firsts)
    assets = []
    for name, image in firsts.items():
        target = email_format(image)
        written = name
        if target and target != image.format:  # a new suffix, unless a file has that name
            written = PurePosixPath(name).with_suffix(_SUFFIX[target]).as_posix()
            if written in taken:
                written = name + _SUFFIX[target]
            taken.add(written)
        assets.append(Asset(issue.folder / name, written,
                            SHARPNESS * widths[name] if target else 0, target))
    return tuple(assets)


def asset_paths(issue: Issue) -> dict[str, str]:
    """Each local image's src, as written, -> its path among the written assets."""
    written = {asset.source: asset.name for asset in issue_assets(issue)}
    return {image.src: written[issue.folder / image.asset] for image in issue.images
            if image.asset}


def prepare_image(asset: Asset) -> Prepared:
    """The asset's bytes as readers get them: scaled, converted and optimised."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    data = asset.source.read_bytes()  # bounded: read_issue refused a file over its limit
    if not asset.format:
        return Prepared(data, (0, 0), (0, 0), len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        with PILImage.open(io.BytesIO(data)) as opened:
            before, source_format = oriented_size(opened), opened.format
            untouched = opened.size  # and without EXIF (orientation, location, maker)
            plain = not opened.getexif()
            if getattr(opened, "is_animated", False) and source_format == asset.format:
                return Prepared(data, before, before, len(data))
            image = opened
            if before[0] > asset.max_width:
                box = (asset.max_width, 1_000_000)
                image.thumbnail(box if before == image.size else box[::-1],
                                PILImage.Resampling.LANCZOS, reducing_gap=3.0)
            image = ImageOps.exif_transpose(image)
            icc = opened.info.get("icc_profile")
            out = io.BytesIO()
            _save(image, asset.format, out, icc)
    written = out.getvalue()
    size = image.size
    if plain and size == untouched and asset.format == source_format \
            and len(written) >= len(data):
        written = data  # already as small as this makes it
    return Prepared(written, size, before, len(data))


def _save(image, fmt: str, out: io.BytesIO, icc: bytes | None) -> None:
    extra = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True,
                   **extra)
    elif fmt == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True, **extra)
    else:
        image.save(out, "GIF", optimize=True)


def write_assets(assets: tuple[Asset, ...], folder: Path) -> list[tuple[Asset, Prepared]]:
    """Each asset prepared for email under folder, keeping its relative path; what was
    written."""
    written = []
    for asset in assets:
        target = folder / asset.name
        target.parent.mkdir(parents=True, exist_ok=True)
        prepared = prepare_image(asset)
        target.write_bytes(prepared.data)
        written.append((asset, prepared))
    return written
