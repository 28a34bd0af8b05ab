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
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

THUMBNAIL_PX = 320
EMAIL_WIDTH_PX = 600
# What an upload may decode to, checked from the headers before any pixel is decoded:
# frames × width × height pixels of 4 bytes (RGBA). 40 megapixels is one large photo
# (already far beyond any e-mail need: 160 MB decoded), or e.g. 160 frames of 500 × 500.
# Frames are then decoded one at a time, so an upload's peak memory stays within a small
# multiple of this (measured in tests/test_bounds.py, UPLOAD_PEAK_BYTES; see README).
MAX_PIXELS = 40_000_000  # all frames together
BYTES_PER_PIXEL = 4
MAX_DECODED_BYTES = MAX_PIXELS * BYTES_PER_PIXEL
MAX_FRAMES = 500  # 50 s of animation at 10 frames a second

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


def gif_extent(data: bytes, *, stop_after: int) -> tuple[int, int, int]:
    """(frames, width, height) of a GIF read from its block structure without decoding any
    pixel: the canvas grows to the largest frame, as the decoder's does. Counting stops
    after ``stop_after`` frames (a 10 MB file may declare 500,000 of them)."""
    size = len(data)
    if size < 13:
        return 0, 0, 0
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    pos = 13
    if data[10] & 0x80:  # global colour table
        pos += 3 << ((data[10] & 7) + 1)
    frames = 0

    def skip_sub_blocks(pos: int) -> int:
        while pos < size and data[pos]:
            pos += data[pos] + 1
        return pos + 1

    while pos < size and frames <= stop_after:
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif block == 0x2C and pos + 10 <= size:  # image descriptor
            frames += 1
            left, top, w, h = (
                int.from_bytes(data[pos + i : pos + i + 2], "little") for i in (1, 3, 5, 7)
            )
            width, height = max(width, left + w), max(height, top + h)
            local = data[pos + 9]
            pos += 10
            if local & 0x80:  # local colour table
                pos += 3 << ((local & 7) + 1)
            pos = skip_sub_blocks(pos + 1)  # after the LZW code size
        else:  # the trailer, or garbage after the last frame: the decoder stops there too
            break
    return frames, width, height


def _too_large(name: str, *, frames: int, width: int, height: int) -> ValidationError:
    megabytes = frames * width * height * BYTES_PER_PIXEL // 1_000_000
    if frames > 1:
        return ValidationError(
            _(
                "%(name)s is an animation of %(frames)s frames of %(w)s × %(h)s pixels: "
                "%(mb)s MB once decoded; the limit is %(max)s MB. Use fewer or smaller frames."
            )
            % {
                "name": name,
                "frames": frames,
                "w": width,
                "h": height,
                "mb": megabytes,
                "max": MAX_DECODED_BYTES // 1_000_000,
            }
        )
    return ValidationError(
        _("%(name)s is %(w)s × %(h)s pixels; the limit is %(max)s megapixels.")
        % {"name": name, "w": width, "h": height, "max": MAX_PIXELS // 1_000_000}
    )


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
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        rgb.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=85, method=4)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _flat(image: Image.Image) -> Image.Image:
    """RGB or RGBA pixels with the EXIF orientation applied (and nothing else kept).

    In place where it can be: each copy of a 40-megapixel image is 120-160 MB."""
    ImageOps.exif_transpose(image, in_place=True)
    mode = "RGBA" if _has_alpha(image) else "RGB"
    flat = image if image.mode == mode else image.convert(mode)
    flat.info = {}  # no metadata of the upload (ICC profile, text chunks…) is written again
    return flat


def _resized(image: Image.Image, width: int) -> Image.Image:
    if image.width <= width:
        return image.copy()
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _damaged(name: str) -> ValidationError:
    return ValidationError(
        _("%(name)s could not be read as an image: the file is damaged or incomplete.")
        % {"name": name}
    )


def _animation(image: Image.Image) -> bytes:
    """The animation re-encoded frame by frame: one decoded RGBA frame at a time, the GIF
    writer keeping each as palette pixels (one byte each) until it writes the file."""
    frames = (frame.convert("RGBA") for frame in ImageSequence.Iterator(image))
    first = next(frames)
    out = io.BytesIO()
    first.save(
        out,
        "GIF",
        save_all=True,
        append_images=frames,
        loop=0,
        duration=image.info.get("duration", 100),
        disposal=2,
    )
    return out.getvalue()


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
    # Only GIF animations are kept animated; other formats keep their first frame.
    frames, gif_width, gif_height = (
        gif_extent(data, stop_after=MAX_FRAMES) if fmt == "GIF" else (1, 0, 0)
    )
    if frames > MAX_FRAMES:
        raise ValidationError(
            _("%(name)s has more than %(max)s frames; the limit is %(max)s.")
            % {"name": name, "max": MAX_FRAMES}
        )
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check (at 89 MP) would only warn; ours refuses first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValidationError(
            _(
                "%(name)s announces far more than %(max)s megapixels; the limit is %(max)s megapixels."
            )
            % {"name": name, "max": MAX_PIXELS // 1_000_000}
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise _damaged(name) from None
    try:
        with probe:
            if probe.format != fmt:
                raise ValidationError(
                    _("%(name)s starts like a %(fmt)s image but is not one.")
                    % {"name": name, "fmt": fmt}
                )
            # Decoded bytes are bounded before any pixel is decoded (the headers give the
            # size, the block structure the frame count).
            width, height = max(probe.width, gif_width), max(probe.height, gif_height)
            if max(frames, 1) * width * height > MAX_PIXELS:
                raise _too_large(name, frames=max(frames, 1), width=width, height=height)
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            animated = frames > 1
            if animated:
                original = _animation(image)
                image.seek(0)
                first = image.convert("RGBA")
            else:
                first = _flat(image)
                original = _encode(first, fmt)
    except ValidationError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
    ):
        raise _damaged(name) from None
    alpha = _has_alpha(first)
    thumb_fmt = "PNG" if alpha else "JPEG"
    box = (THUMBNAIL_PX, THUMBNAIL_PX)
    thumbnail = (
        ImageOps.contain(first, box, Image.Resampling.LANCZOS)  # never a full-size copy
        if first.width > THUMBNAIL_PX or first.height > THUMBNAIL_PX
        else first.copy()
    )
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
