"""The thumbnail pipeline: an image scaled to fit a bounding box, as PNG, JPEG, WebP or GIF."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any, Literal, get_args

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from worker.registry import Output, pipeline

MAX_SIDE = 4096
Format = Literal["PNG", "JPEG", "WEBP", "GIF"]
FormatName = Literal["PNG", "JPEG", "JPG", "WEBP", "GIF", "png", "jpeg", "jpg", "webp", "gif"]
_SPELLINGS: dict[str, Format] = {
    name: canonical
    for canonical in get_args(Format)
    for name in (canonical, canonical.lower(), *(("JPG", "jpg") if canonical == "JPEG" else ()))
}

# Modes each format stores as they are; anything else is converted first.
_STORABLE: dict[str, frozenset[str]] = {
    "PNG": frozenset({"1", "L", "LA", "P", "RGB", "RGBA"}),
    "JPEG": frozenset({"L", "RGB"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "GIF": frozenset({"1", "L", "P", "RGB", "RGBA"}),
}
_SAVE_ARGS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 85},
    "WEBP": {"quality": 80},
}
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose)
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class ThumbnailOptions(BaseModel):
    """Options of the thumbnail pipeline."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    width: int = Field(default=256, ge=1, le=MAX_SIDE, strict=True)
    """Widest the thumbnail may be, in pixels."""
    height: int = Field(default=256, ge=1, le=MAX_SIDE, strict=True)
    """Tallest the thumbnail may be, in pixels."""
    format: FormatName = "PNG"
    """Output format: PNG, JPEG (or JPG), WEBP or GIF, in upper or lower case."""

    @field_validator("format")
    @classmethod
    def _canonical(cls, value: FormatName) -> Format:
        # the schema lists every spelling accepted, so enqueue refuses exactly what this does
        return _SPELLINGS[value]


@pipeline("thumbnail", options=ThumbnailOptions)
def thumbnail(data: bytes, options: Mapping[str, Any]) -> Output:
    """An image scaled down to fit width × height (never enlarged), keeping its aspect ratio."""
    width, height = int(options.get("width", 256)), int(options.get("height", 256))
    fmt = str(options.get("format", "PNG")).upper()
    image = _decode_thumbnail(data, width, height)
    image = _storable(image, fmt)
    buf = io.BytesIO()
    image.save(buf, fmt, **_SAVE_ARGS.get(fmt, {}))
    blob = buf.getvalue()
    result = {"width": image.width, "height": image.height, "format": fmt, "bytes": len(blob)}
    return Output(result=result, blob=blob, extension="jpg" if fmt == "JPEG" else fmt.lower())


def _decode_thumbnail(data: bytes, width: int, height: int) -> Image.Image:
    """Decode ``data`` straight to a thumbnail, upright; ValueError if it is not a safe image."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a bomb must fail
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as src:
                orientation = src.getexif().get(_EXIF_ORIENTATION, 1)
                turned = orientation in (5, 6, 7, 8)
                image: Image.Image = src
                if src.mode == "P":  # resizing a palette image would use nearest-neighbour
                    image = src.convert("RGBA" if _has_alpha(src) else "RGB")
                image.thumbnail((height, width) if turned else (width, height))
                method = _ORIENTATION.get(orientation)
                return image.transpose(method) if method is not None else image.copy()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValueError(f"cannot decode image: too large: {exc}") from None
        except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
            raise ValueError(f"cannot decode image: {exc}") from None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _storable(image: Image.Image, fmt: str) -> Image.Image:
    """``image`` in a mode ``fmt`` can store; for JPEG, transparency is flattened onto white."""
    if image.mode in _STORABLE[fmt]:
        return image
    alpha = _has_alpha(image)
    if fmt != "JPEG":
        return image.convert("RGBA" if alpha else "RGB")
    if not alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
