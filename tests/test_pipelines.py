"""The built-in pipelines: text-stats values, thumbnail sizes and formats, options checking."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from typing import Any

import orjson
import pytest
from PIL import Image
from pydantic import BaseModel, field_validator

from tests import expected
from worker.pipelines.text_stats import text_stats
from worker.pipelines.thumbnail import thumbnail
from worker.pool.transform_child import run_batch
from worker.registry import REGISTRY, Output, Pipeline

THUMB = {"width": 256, "height": 256, "format": "PNG"}


def image_bytes(
    size: tuple[int, int], mode: str = "RGB", fmt: str = "PNG", color: Any = "red"
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` grey pixels but carries no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_builtin_pipelines_are_registered() -> None:
    """Importing worker.pipelines registers text-stats and thumbnail, with descriptions."""
    import worker.pipelines  # noqa: F401

    assert {"text-stats", "thumbnail"} <= set(REGISTRY.pipelines)
    assert REGISTRY.pipelines["thumbnail"].describe()["options"]["properties"]["width"]


def test_text_stats_exact_values() -> None:
    """Counts, case-folded distinct words and top terms of a small known text."""
    data = b"The cat and the hat. The END, the end!"
    assert text_stats(data, {}) == {
        "bytes": 38,
        "sha256": hashlib.sha256(data).hexdigest(),
        "words": 9,
        "unique_words": 5,
        "top_terms": [["the", 4], ["end", 2], ["cat", 1], ["and", 1], ["hat", 1]],
    }


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "İstanbul ISTANBUL naïve Café café 1_000 déjà-vu ǅemal".encode(),
        b"bad utf-8 \xff\xfe here here",
        " ".join(f"w{i % 13} W{i % 7}" for i in range(500)).encode(),
    ],
)
def test_text_stats_matches_the_reference(data: bytes) -> None:
    """Unicode, invalid UTF-8 and many ties give exactly the reference values."""
    assert text_stats(data, {}) == expected.text_stats(data)


def test_text_stats_keeps_ten_terms() -> None:
    """top_terms holds the 10 most common words; ties keep first appearance order."""
    result = text_stats(b"a b c d e f g h i j k l a", {})
    assert result["top_terms"] == [["a", 2]] + [[w, 1] for w in "bcdefghij"]


@pytest.mark.parametrize(
    ("size", "box", "fitted"),
    [
        ((640, 320), (256, 256), (256, 128)),
        ((300, 900), (100, 100), (33, 100)),
        ((400, 400), (200, 50), (50, 50)),
        ((50, 40), (256, 256), (50, 40)),  # never enlarged
    ],
)
def test_thumbnail_fits_the_box(
    size: tuple[int, int], box: tuple[int, int], fitted: tuple[int, int]
) -> None:
    """The thumbnail fits within width × height and keeps the aspect ratio."""
    out = thumbnail(image_bytes(size), {**THUMB, "width": box[0], "height": box[1]})
    assert isinstance(out, Output)
    assert (out.result["width"], out.result["height"]) == fitted
    assert Image.open(io.BytesIO(out.blob)).size == fitted
    assert out.result["bytes"] == len(out.blob) and out.extension == "png"


@pytest.mark.parametrize(
    ("fmt", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif")]
)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "1"])
def test_thumbnail_formats_and_modes(fmt: str, extension: str, mode: str) -> None:
    """Every format is written from every common mode (e.g. RGBA converted for JPEG)."""
    source = image_bytes((64, 48), mode, "TIFF" if mode == "CMYK" else "PNG")
    out = thumbnail(source, {**THUMB, "width": 32, "format": fmt})
    assert isinstance(out, Output)
    written = Image.open(io.BytesIO(out.blob))
    assert (written.format, written.size) == (fmt, (32, 24))
    assert out.result == {"width": 32, "height": 24, "format": fmt, "bytes": len(out.blob)}
    assert out.extension == extension


def test_thumbnail_transparency_becomes_white_in_jpeg() -> None:
    """JPEG cannot store alpha: transparent pixels are flattened onto white, not black."""
    clear = image_bytes((16, 16), "RGBA", color=(0, 0, 0, 0))
    out = thumbnail(clear, {**THUMB, "format": "JPEG"})
    assert isinstance(out, Output)
    red, green, blue = Image.open(io.BytesIO(out.blob)).getpixel((8, 8))  # type: ignore[misc]
    assert min(red, green, blue) >= 250


def test_thumbnail_follows_exif_orientation() -> None:
    """A photo tagged 'rotate 90°' is fitted and written upright."""
    image = Image.new("RGB", (200, 100), "red")
    exif = image.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif.tobytes())
    out = thumbnail(buf.getvalue(), {**THUMB, "width": 100, "height": 100})
    assert isinstance(out, Output)
    assert (out.result["width"], out.result["height"]) == (50, 100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image", "cannot decode image: cannot identify image file"),
        (image_bytes((64, 64))[:60], "cannot decode image"),  # truncated
        (png_header(10, 10), "cannot decode image"),  # no pixel data
        (png_header(10_000, 10_000), "cannot decode image: too large"),  # Pillow only warns
        (png_header(20_000, 20_000), "cannot decode image: too large"),
    ],
    ids=["junk", "truncated", "no-pixels", "bomb-over-limit", "bomb-over-twice-limit"],
)
def test_thumbnail_refuses_bad_images(data: bytes, message: str) -> None:
    """Undecodable, truncated and decompression-bomb images raise ValueError."""
    with warnings.catch_warnings():
        # as in a worker, where warnings are not errors: the pipeline itself must raise
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ValueError, match=message):
            thumbnail(data, THUMB)


def test_thumbnail_through_the_pool_child() -> None:
    """In a pool process the thumbnail's blob and extension ride beside its JSON result."""
    good, bad = run_batch("thumbnail", THUMB, [image_bytes((512, 512)), b"junk"])
    assert good.ok and good.extension == "png" and good.blob is not None
    assert isinstance(good.value, bytes) and orjson.loads(good.value)["width"] == 256
    assert not bad.ok and str(bad.value).startswith("ValueError: cannot decode image")


@pytest.mark.parametrize(
    ("options", "checked"),
    [
        ({}, {"width": 256, "height": 256, "format": "PNG"}),
        ({"width": 64, "format": "jpg"}, {"width": 64, "height": 256, "format": "JPEG"}),
        ({"height": 4096, "format": "webp"}, {"width": 256, "height": 4096, "format": "WEBP"}),
    ],
)
def test_thumbnail_options_defaults(options: dict[str, Any], checked: dict[str, Any]) -> None:
    """Defaults fill in, and format names are case-insensitive (jpg means JPEG)."""
    assert REGISTRY.pipelines["thumbnail"].check_options(options) == checked


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"width": 0}, "width"),
        ({"height": 4097}, "height"),
        ({"width": "100"}, "width"),
        ({"width": 12.5}, "width"),
        ({"format": "BMP"}, "format"),
        ({"size": 100}, "size"),
    ],
)
def test_thumbnail_options_are_validated(options: dict[str, Any], field: str) -> None:
    """Bad sizes, unknown formats and unknown options are refused, naming the field."""
    with pytest.raises(ValueError, match=rf"invalid options for pipeline 'thumbnail': {field}: "):
        REGISTRY.pipelines["thumbnail"].check_options(options)


class _Positive(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value


def test_an_options_validator_reads_as_written() -> None:
    """A pipeline's own validator's ValueError reads as its author wrote it, after the field,
    as a bad setting's does (no pydantic "Value error, " in front)."""
    pipeline = Pipeline("positive", lambda data, options: {}, _Positive)
    with pytest.raises(ValueError, match=r"^invalid options") as refused:
        pipeline.check_options({"n": -1})
    assert str(refused.value) == "invalid options for pipeline 'positive': n: must not be negative"
