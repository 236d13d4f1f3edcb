"""The rules Teams sets for app icons, checked on the PNG bytes.

The colour icon is a 192x192 PNG; the outline icon is a 32x32 PNG that is white on a
transparent background (Teams tints it, so any other colour shows up wrong). No schema
or offline Microsoft tool checks these, so they are checked here with Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

from manifest.problems import ManifestProblem

COLOR_SIZE = (192, 192)
OUTLINE_SIZE = (32, 32)
SMALL_COLOR_SIZE = (32, 32)
# Anti-aliased edges are drawn in white with partial alpha; a channel below this is not white.
WHITE_FLOOR = 230


def _open_png(field: str, name: str, data: bytes) -> Image.Image | ManifestProblem:
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return ManifestProblem(field, f"{name} is not a readable image ({exc})")
    if image.format != "PNG":
        return ManifestProblem(field, f"{name} is {image.format or 'an unknown format'}, not PNG")
    return image


def _size_problem(
    field: str, name: str, image: Image.Image, size: tuple[int, int]
) -> ManifestProblem | None:
    if image.size == size:
        return None
    return ManifestProblem(
        field, f"{name} is {image.width}x{image.height}, it must be {size[0]}x{size[1]}"
    )


def color_icon_problems(
    field: str, name: str, data: bytes, size: tuple[int, int] = COLOR_SIZE
) -> list[ManifestProblem]:
    """Problems of a full-colour icon: readable PNG of the required size."""
    image = _open_png(field, name, data)
    if isinstance(image, ManifestProblem):
        return [image]
    problem = _size_problem(field, name, image, size)
    return [problem] if problem else []


def _rgba_pixels(image: Image.Image) -> Iterator[tuple[int, int, int, int]]:
    rgba = image.convert("RGBA")
    # tobytes is one C call; walking it in steps of four beats per-pixel getpixel.
    raw = rgba.tobytes()
    for i in range(0, len(raw), 4):
        yield raw[i], raw[i + 1], raw[i + 2], raw[i + 3]


def outline_icon_problems(field: str, name: str, data: bytes) -> list[ManifestProblem]:
    """Problems of the outline icon: 32x32 PNG, white strokes on a fully transparent background."""
    image = _open_png(field, name, data)
    if isinstance(image, ManifestProblem):
        return [image]
    problem = _size_problem(field, name, image, OUTLINE_SIZE)
    if problem:
        # The size is read from the header; a wrong size is reported without decoding
        # pixels, so an oversized image never gets decompressed.
        return [problem]
    if "A" not in image.getbands() and "transparency" not in image.info:
        return [ManifestProblem(field, f"{name} has no alpha channel; it needs a transparent "
                                       "background")]
    transparent = 0
    visible = 0
    not_white = 0
    first_bad: tuple[int, int] | None = None
    for index, (r, g, b, a) in enumerate(_rgba_pixels(image)):
        if a == 0:
            transparent += 1
            continue
        visible += 1
        if min(r, g, b) < WHITE_FLOOR:
            not_white += 1
            if first_bad is None:
                first_bad = (index % image.width, index // image.width)
    problems: list[ManifestProblem] = []
    if transparent == 0:
        problems.append(ManifestProblem(
            field, f"{name} is fully opaque; the background must be transparent"))
    if visible == 0:
        problems.append(ManifestProblem(field, f"{name} is fully transparent; it draws nothing"))
    if not_white:
        problems.append(ManifestProblem(
            field,
            f"{name} has {not_white} visible pixel(s) that are not white "
            f"(first at x={first_bad[0] if first_bad else 0}, "
            f"y={first_bad[1] if first_bad else 0}); the outline must be white only",
        ))
    return problems
