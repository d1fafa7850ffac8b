"""Checked image file I/O (OpenCV): a missing or undecodable file is an error that names it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synergyseg.atomic import atomic_path
from synergyseg.errors import InputDataError


def write_image(image: np.ndarray, path: str | Path, params: list[int] | None = None) -> None:
    """Write an image with OpenCV (RGB arrays are converted to OpenCV's BGR order), atomically."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), array, params or []):
            raise OSError(f"{path}: OpenCV could not write the image")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"


def _imread(path: Path, flags: int, what: str) -> np.ndarray:
    """cv2.imread that names the file instead of returning None, and refuses a truncated JPEG
    (which OpenCV decodes with the missing rows filled in gray, warning only on stderr)."""
    if not path.is_file():
        raise InputDataError(path, f"{what} file is missing")
    data = path.read_bytes()  # read once: checked here, decoded from memory below
    if not data:
        raise InputDataError(path, f"{what} file is empty (0 bytes)")
    # In JPEG scan data every 0xFF byte is followed by 0x00 or a restart marker, so an
    # end-of-image marker in the last bytes can only be the real end of the image. Without one
    # (a truncated file, or a file with trailing data appended), a strict decode decides.
    if data[:2] == JPEG_START and JPEG_END not in data[-4096:] and not _decodes_completely(path):
        raise InputDataError(path, "JPEG is truncated (no end-of-image marker); fetch it again")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise InputDataError(path, "not a readable image (corrupt or unsupported format)")
    return image


def _decodes_completely(path: Path) -> bool:
    """Whether Pillow decodes the whole image without running out of data."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError):
        return False
    return True


def png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file from its IHDR chunk, None for other formats."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a colour image as an RGB uint8 array; a missing or undecodable file is a named error.

    Gray, palette and 16-bit images are converted (palette to its colours, 16 bits scaled to 8),
    as OpenCV's colour decoding does. A JPEG's EXIF orientation tag is ignored: the pixels are
    taken as stored, as its mask's are (PNG masks carry no orientation), so the two stay aligned.
    """
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.cvtColor(_imread(Path(path), flags, "image"), cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """Read a single-channel 8-bit label/mask image unchanged (no colour conversion, no
    rescaling).

    16-bit masks are refused rather than rescaled: whether 0/65535, 0/255 or 0/1 was meant
    cannot be told. Palette PNGs are read as their colours (what OpenCV does): a black-and-white
    palette works like a gray mask, a coloured one is refused, naming the palette.
    """
    path = Path(path)
    image = _imread(path, cv2.IMREAD_UNCHANGED, "mask")
    if image.dtype != np.uint8:
        bits = 8 * image.dtype.itemsize
        raise InputDataError(
            path, f"mask is a {bits}-bit image; save masks as 8-bit PNGs (0/1 or 0/255)"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        # An opaque alpha channel says nothing; a mask drawn in transparency would be lost.
        if (image[..., 3] != 255).any():
            raise InputDataError(
                path,
                "mask has an alpha channel with transparent pixels (a mask drawn in the alpha "
                "channel would be read as empty); save it as an 8-bit gray PNG",
            )
        image = image[..., :3]
    if image.ndim == 3:
        # Some tools save label maps as 3 identical channels; anything else is not a label map.
        if not (
            np.array_equal(image[..., 0], image[..., 1])
            and np.array_equal(image[..., 0], image[..., 2])
        ):
            header = png_header(path)
            kind = "a palette PNG with colours" if header and header[1] == 3 else "a colour image"
            raise InputDataError(
                path,
                f"mask is {kind} (its colour channels differ); save it as an 8-bit gray PNG",
            )
        image = image[..., 0]
    return image


def read_binary_mask(path: str | Path, foreground: int = 255) -> np.ndarray:
    """Read a 0/``foreground`` mask as a {0, 1} uint8 array, refusing any other value."""
    mask = read_gray(path)
    values = np.unique(mask)
    unexpected = sorted(set(values.tolist()) - {0, foreground})
    if unexpected:
        shown = ", ".join(str(v) for v in unexpected[:8])
        other = 1 if foreground == 255 else 255
        hint = (
            f" (format custom: if {other} marks the foreground, set the dataset's "
            f"slices.mask_foreground: {other})"
            if unexpected == [other] and foreground not in values
            else ""
        )
        raise InputDataError(
            path, f"mask is not binary: found values {shown} besides 0 and {foreground}{hint}"
        )
    return (mask == foreground).astype(np.uint8)
