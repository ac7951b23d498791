"""Images for email: `build` scales each image to twice its width in the email, converts
what mail clients cannot show, optimises, and leaves the original in the issue folder."""

from __future__ import annotations

import io
import random
import re

from PIL import Image

from tests.conftest import write_issue

YAML = 'number: 3\ntitle: "Images"\npreheader: "Pictures"\ndate: 2024-01-31\n'


def section(body: str) -> str:
    return f"---\nkind: news\n---\n\n## An item\n\n{body}\n"


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.frombytes(mode, (width, height),
                           random.Random(7).randbytes(width * height * len(mode)))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def test_a_4_mb_photo_becomes_twice_its_display_width(run, project):
    photo = encoded(noise(1700, 900), "PNG")
    assert len(photo) > 4 * 1024 * 1024
    folder = write_issue(project / "issues" / "pics", {
        "issue.yaml": YAML, "01-news.md": section("![A photo](images/photo.png)"),
        "images/photo.png": photo})
    result = run("build", "pics")
    assert result.exit_code == 0, result.output
    built = project / "build" / "pics" / "assets" / "images" / "photo.png"
    with Image.open(built) as image:
        assert image.size == (1100, 582)  # shown 550 px wide in the email
    assert "    images/photo.png  1700×900 → 1100×582, " in result.stdout
    assert (folder / "images" / "photo.png").read_bytes() == photo  # the original stays
    html = (project / "build" / "pics" / "email.html").read_text()
    tag = re.search(r'<img[^>]*photo\.png[^>]*>', html)[0]
    assert 'width="550"' in tag and 'height="291"' in tag


def test_a_header_image_keeps_twice_the_full_column(run, project):
    header = encoded(noise(1600, 400), "JPEG", quality=95)
    write_issue(project / "issues" / "pics", {
        "issue.yaml": YAML + "header_image: images/header.jpg\n",
        "01-news.md": section("Text."), "images/header.jpg": header})
    assert run("build", "pics").exit_code == 0
    with Image.open(project / "build" / "pics" / "assets" / "images" / "header.jpg") as image:
        assert image.size == (1200, 300) and image.format == "JPEG"


def test_webp_and_avif_become_jpeg_or_png_and_the_email_points_at_them(run, project):
    photo = encoded(noise(300, 200), "WEBP")
    logo = encoded(noise(120, 80, "RGBA"), "AVIF")
    write_issue(project / "issues" / "pics", {
        "issue.yaml": YAML, "01-news.md": section(
            "![A photo](images/photo.webp)\n\n![A logo](images/logo.avif)"),
        "images/photo.webp": photo, "images/logo.avif": logo})
    assert run("build", "pics").exit_code == 0
    out = project / "build" / "pics"
    assert sorted(p.name for p in (out / "assets" / "images").iterdir()) == ["logo.png",
                                                                           "photo.jpg"]
    with Image.open(out / "assets" / "images" / "photo.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (300, 200))
    with Image.open(out / "assets" / "images" / "logo.png") as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (120, 80))
    html = (out / "email.html").read_text()
    assert "/images/photo.jpg" in html and "/images/logo.png" in html
    assert ".webp" not in html and ".avif" not in html


def test_optimising_drops_the_location_in_a_photo(run, project):
    exif = Image.Exif()
    exif[0x8825] = {2: (31.0, 14.0, 0.0)}  # GPS latitude
    exif[0x010F] = "PhoneMaker"
    photo = encoded(noise(400, 300), "JPEG", quality=98, exif=exif.tobytes())
    write_issue(project / "issues" / "pics", {
        "issue.yaml": YAML, "01-news.md": section("![A photo](images/p.jpg)"),
        "images/p.jpg": photo})
    assert run("build", "pics").exit_code == 0
    built = (project / "build" / "pics" / "assets" / "images" / "p.jpg").read_bytes()
    assert len(built) < len(photo)
    with Image.open(io.BytesIO(built)) as image:
        assert not image.getexif()


def test_a_turned_phone_photo_is_written_upright(run, project):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: 300 wide, 2400 tall
    photo = encoded(noise(2400, 300), "JPEG", exif=exif.tobytes())
    write_issue(project / "issues" / "pics", {
        "issue.yaml": YAML, "01-news.md": section("![Tall](images/t.jpg)"),
        "images/t.jpg": photo})
    assert run("build", "pics").exit_code == 0
    with Image.open(project / "build" / "pics" / "assets" / "images" / "t.jpg") as image:
        assert image.size == (300, 2400)
    html = (project / "build" / "pics" / "email.html").read_text()
    tag = re.search(r"<img[^>]*t\.jpg[^>]*>", html)[0]
    assert 'width="300"' in tag and 'height="2400"' in tag
