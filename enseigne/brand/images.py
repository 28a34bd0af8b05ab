"""Uploaded images: checked by content, re-encoded without metadata, with renditions.

Nothing a user uploads is stored as sent. The bytes must start like a PNG, JPEG, GIF or
WebP file *and* decode as that format; SVG (which can carry scripts) is refused with a
reason. The stored original is a fresh encoding of the decoded pixels, so EXIF (GPS
position, camera serial…), ICC tricks and anything appended after the image are gone.
Two renditions are made: a thumbnail for the library and an e-mail rendition at most
600 px wide in a format every mail client shows (JPEG, or PNG when there is transparency).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

THUMBNAIL_PX = 320
EMAIL_WIDTH_PX = 600
MAX_PIXELS = 40_000_000  # a 40-megapixel image is already far beyond any e-mail need

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}


@dataclass(frozen=True)
class Processed:
    format: str  # PNG / JPEG / GIF / WEBP
    original: bytes
    thumbnail: bytes
    thumbnail_ext: str
    email: bytes
    email_ext: str
    width: int
    height: int


def sniff(head: bytes) -> str | None:
    """The format the first bytes announce, or None."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in text


def max_upload_bytes() -> int:
    return getattr(settings, "ASSET_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA"):
        return image.getchannel("A").getextrema()[0] < 255
    return image.mode == "P" and "transparency" in image.info


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=85, method=4)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _flat(image: Image.Image) -> Image.Image:
    """RGB or RGBA pixels with the EXIF orientation applied (and nothing else kept)."""
    image = ImageOps.exif_transpose(image)
    mode = "RGBA" if _has_alpha(image) else "RGB"
    return image.convert(mode)


def _resized(image: Image.Image, width: int) -> Image.Image:
    if image.width <= width:
        return image.copy()
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def process(data: bytes, file_name: str = "") -> Processed:
    """Check and re-encode one upload; ValidationError says what is wrong with the file."""
    name = file_name or _("the file")
    if not data:
        raise ValidationError(_("%(name)s is empty.") % {"name": name})
    limit = max_upload_bytes()
    if len(data) > limit:
        raise ValidationError(
            _("%(name)s weighs %(size)s MB; the limit is %(max)s MB.")
            % {"name": name, "size": round(len(data) / 1048576, 1), "max": limit // 1048576}
        )
    fmt = sniff(data[:16])
    if fmt is None:
        if _looks_like_svg(data):
            raise ValidationError(
                _(
                    "%(name)s is an SVG drawing. SVG files can carry scripts and many mail "
                    "clients do not show them: export it as PNG and upload that."
                )
                % {"name": name}
            )
        raise ValidationError(
            _("%(name)s is not a PNG, JPEG, GIF or WebP image (whatever its name says).")
            % {"name": name}
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format != fmt:
                raise ValidationError(
                    _("%(name)s starts like a %(fmt)s image but is not one.")
                    % {"name": name, "fmt": fmt}
                )
            if probe.width * probe.height > MAX_PIXELS:
                raise ValidationError(
                    _("%(name)s is %(w)s × %(h)s pixels; the limit is %(max)s megapixels.")
                    % {
                        "name": name,
                        "w": probe.width,
                        "h": probe.height,
                        "max": MAX_PIXELS // 1_000_000,
                    }
                )
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            animated = fmt == "GIF" and getattr(image, "n_frames", 1) > 1
            if animated:
                frames = [frame.convert("RGBA") for frame in ImageSequence.Iterator(image)]
                out = io.BytesIO()
                frames[0].save(
                    out,
                    "GIF",
                    save_all=True,
                    append_images=frames[1:],
                    loop=0,
                    duration=image.info.get("duration", 100),
                    disposal=2,
                )
                original = out.getvalue()
                first = frames[0]
            else:
                first = _flat(image)
                original = _encode(first, fmt)
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ValidationError(
            _("%(name)s could not be read as an image: the file is damaged or incomplete.")
            % {"name": name}
        ) from None
    alpha = _has_alpha(first)
    thumb_fmt = "PNG" if alpha else "JPEG"
    thumbnail = first.copy()
    thumbnail.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    if animated and first.width <= EMAIL_WIDTH_PX:
        email, email_fmt = original, "GIF"
    else:
        email_fmt = "PNG" if alpha else "JPEG"
        email = _encode(_resized(first, EMAIL_WIDTH_PX), email_fmt)
    return Processed(
        format=fmt,
        original=original,
        thumbnail=_encode(thumbnail, thumb_fmt),
        thumbnail_ext=EXTENSIONS[thumb_fmt],
        email=email,
        email_ext=EXTENSIONS[email_fmt],
        width=first.width,
        height=first.height,
    )
