"""Offline clean images: the ground truth that synthetic low-light data is made from.

Nothing here downloads. The real photographs are the images that scikit-image and matplotlib
ship inside their wheels (checked to load offline with scikit-image 0.26): scikit-image's RGB
``astronaut``, ``chelsea``, ``coffee``, ``rocket``, ``hubble_deep_field``, ``retina``,
``immunohistochemistry``, ``colorwheel``; its grey ``camera``, ``moon``, ``coins``, ``clock``,
``brick``, ``grass``, ``gravel``, ``text``, ``page``, ``cell`` (replicated to three channels);
the left view of the real stereo pair ``stereo_motorcycle``; and matplotlib's sample photo
``grace_hopper``. Other scikit-image loaders fetch their files from the internet and are not used.

:func:`procedural_scene` draws an unlimited supply of varied synthetic scenes (gradients, coloured
shapes, textures, fine lines and text, bright light sources that saturate as street lamps do at
night), so training at small scale never runs out of content.

Every image is float32 sRGB, H×W×3, values in [0, 1]. Everything is deterministic: the same
name/size/seed always gives the same pixels.

:func:`save_image` writes such an image (or a model's 1×3×H×W / 3×H×W output tensor) as an 8- or
16-bit PNG, atomically.
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from llve.errors import InvalidInputError, UnknownNameError

RGB_IMAGE_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                   "immunohistochemistry", "colorwheel")
GRAY_IMAGE_NAMES = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel", "text", "page",
                    "cell")
IMAGE_NAMES = RGB_IMAGE_NAMES + GRAY_IMAGE_NAMES + ("stereo_motorcycle", "grace_hopper")
"""Every real image :func:`clean_image` accepts, in a fixed order (``clean_images`` draws here)."""

_SUPERSAMPLING = 2  # procedural scenes are drawn at 2x and area-downsampled: cheap antialiasing


@functools.lru_cache(maxsize=None)
def _load_uint8(name: str) -> np.ndarray:
    """The stored 8-bit image (H×W or H×W×3), cached and read-only."""
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            image = np.asarray(matplotlib.image.imread(file, format="jpg"))
    elif name == "stereo_motorcycle":
        import skimage.data

        image = skimage.data.stereo_motorcycle()[0]
    elif name in RGB_IMAGE_NAMES or name in GRAY_IMAGE_NAMES:
        import skimage.data

        image = getattr(skimage.data, name)()
    else:
        raise UnknownNameError(f"unknown image {name!r}; expected one of {IMAGE_NAMES} "
                               "(or use procedural_scene for synthetic scenes)")
    if image.ndim == 3:
        image = image[..., :3]  # drop an alpha channel; gray images are 2-D and stay whole
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


def _to_float_rgb(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32) / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a square image; area averaging when shrinking avoids aliasing."""
    interpolation = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_CUBIC
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    return np.clip(resized, 0.0, 1.0)  # cubic overshoot must not leave [0, 1]


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise InvalidInputError(f"size must be an integer >= 8 (pixels), got {size!r}")


def clean_image(name: str, size: int | None = None) -> np.ndarray:
    """One offline photograph as float32 sRGB H×W×3 in [0, 1].

    ``name`` is one of :data:`IMAGE_NAMES`. Grey images are replicated to three channels. With
    ``size`` the largest centred square is cut out and resized to ``size``×``size``.
    """
    image = _to_float_rgb(_load_uint8(name))
    if size is None:
        return image
    _check_size(size)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return _resize_square(image[top:top + side, left:left + side], size)


def stereo_motorcycle() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real stereo pair (Middlebury 2014 "Motorcycle", shipped with scikit-image).

    Returns ``(left, right, disparity)``: float32 sRGB 500×741×3 views in [0, 1] and the float32
    ground-truth disparity in pixels, NaN where unknown. Convention (checked):
    ``left[y, x] ≈ right[y, x - disparity[y, x]]``, i.e. the flow from left to right is
    ``(-disparity, 0)`` — a real two-view warp to test warping code on.
    """
    import skimage.data

    left, right, disparity = skimage.data.stereo_motorcycle()
    disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float32)
    return _to_float_rgb(left), _to_float_rgb(right), disparity


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to [0, 1]: clouds, stains, uneven illumination.

    Drawn at a resolution of about ``sigma`` pixels per sample and upsampled, which costs far less
    than filtering full-size noise with a wide kernel and looks the same.
    """
    step = max(1.0, sigma / 2)
    coarse_shape = (max(2, int(shape[0] / step)), max(2, int(shape[1] / step)))
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32),
                                     sigma / step, mode="wrap")
    field = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def _random_colour(rng: np.random.Generator, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, 3).astype(np.float32)


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth two-colour gradient along a random direction with low-frequency variation."""
    coords = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    angle = np.float32(rng.uniform(0, 2 * np.pi))  # float32 scalars keep the canvas float32
    ramp = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    start, end = _random_colour(rng, 0.05, 0.7), _random_colour(rng, 0.05, 0.7)
    image = start + ramp[..., None] * (end - start)
    variation = _smooth_noise(rng, (side, side), sigma=side / 8)
    return image * (0.75 + 0.5 * variation[..., None])


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A coloured texture: grating, checkerboard or filtered noise (fine detail)."""
    kind = rng.integers(3)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        period = rng.uniform(3, 40) * _SUPERSAMPLING
        angle = rng.uniform(0, np.pi)
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    elif kind == 1:
        cell = int(rng.integers(2, 24)) * _SUPERSAMPLING
        pattern = (((x // cell) + (y // cell)) % 2).astype(np.float32)
    else:
        pattern = _smooth_noise(rng, (height, width), sigma=rng.uniform(0.7, 4) * _SUPERSAMPLING)
    dark, bright = _random_colour(rng, 0.0, 0.5), _random_colour(rng, 0.4, 1.0)
    return dark + pattern[..., None] * (bright - dark)


def _shape_mask(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random filled ellipse, rotated rectangle or polygon as an 8-bit mask."""
    mask = np.zeros((side, side), np.uint8)
    centre = rng.uniform(0, side, 2)
    radius = rng.uniform(0.04, 0.3) * side
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(radius), int(radius * rng.uniform(0.3, 1.0)))
        cv2.ellipse(mask, tuple(int(c) for c in centre), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    elif kind == 1:
        box = (tuple(centre), (radius * 2, radius * rng.uniform(0.2, 2.0)), rng.uniform(0, 180))
        cv2.fillPoly(mask, [cv2.boxPoints(box).astype(np.int32)], 255)
    else:
        count = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.4, 1.0, count)
        points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
        cv2.fillPoly(mask, [points.astype(np.int32)], 255)
    return mask


def _paint_shapes(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    side = image.shape[0]
    for _ in range(count):
        mask = _shape_mask(rng, side)
        left, top, width, height = cv2.boundingRect(mask)
        inside = mask[top:top + height, left:left + width] > 0
        region = image[top:top + height, left:left + width]
        if rng.random() < 0.4 and inside.any():
            region[inside] = _texture(rng, height, width)[inside]
        else:
            region[inside] = _random_colour(rng)


def _paint_fine_detail(rng: np.random.Generator, image: np.ndarray) -> None:
    """Thin lines and small text: the detail a denoiser must keep."""
    side = image.shape[0]
    for _ in range(int(rng.integers(3, 12))):
        start, end = rng.integers(0, side, 2), rng.integers(0, side, 2)
        thickness = int(rng.integers(1, 3))
        cv2.line(image, tuple(int(v) for v in start), tuple(int(v) for v in end),
                 _random_colour(rng).tolist(), thickness)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    for _ in range(int(rng.integers(1, 4))):
        text = "".join(rng.choice(letters, int(rng.integers(3, 10))))
        origin = (int(rng.integers(0, side // 2)), int(rng.integers(side // 8, side)))
        scale = rng.uniform(0.3, 1.2) * side / 512
        mask = np.zeros((side, side), np.uint8)  # putText draws on 8-bit images only
        thickness = max(1, int(2 * scale))
        cv2.putText(mask, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness)
        image[mask > 0] = _random_colour(rng)


def _paint_lights(rng: np.random.Generator, image: np.ndarray) -> None:
    """Light sources: a saturated core in a soft glow (lamps, windows, headlights)."""
    side = image.shape[0]
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(0, side, 2)
        core = rng.uniform(0.005, 0.03) * side
        colour = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.4, 1.0)], np.float32)
        reach = int(16 * core) + 1  # the glow is below 1e-3 beyond 4 standard deviations
        top, left = max(0, int(cy) - reach), max(0, int(cx) - reach)
        window = image[top:int(cy) + reach, left:int(cx) + reach]
        y, x = np.mgrid[0:window.shape[0], 0:window.shape[1]].astype(np.float32)
        distance2 = (x + left - cx) ** 2 + (y + top - cy) ** 2
        window += 0.6 * np.exp(-distance2 / (2 * (4 * core) ** 2))[..., None] * colour
        window[distance2 < core ** 2] = rng.uniform(0.97, 1.0)


def procedural_scene(size: int = 256, seed: int = 0) -> np.ndarray:
    """A varied synthetic sRGB scene: float32 ``size``×``size``×3 in [0, 1], fixed by ``seed``.

    Layers: a smooth gradient background with low-frequency variation; 6–20 random ellipses,
    rectangles and polygons, some filled with gratings, checkerboards or noise textures; thin lines
    and small text for fine detail; 1–4 light sources whose cores are near 1.0, so that after
    unprocessing they saturate the sensor as lamps do in real night shots.
    """
    _check_size(size)
    rng = np.random.default_rng(seed)
    side = size * _SUPERSAMPLING
    image = _background(rng, side)
    _paint_shapes(rng, image, count=int(rng.integers(6, 21)))
    _paint_fine_detail(rng, image)
    _paint_lights(rng, image)
    image = cv2.resize(np.clip(image, 0.0, 1.0), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _random_crop(rng: np.random.Generator, image: np.ndarray, size: int) -> np.ndarray:
    """A random square covering 50–100% of the shorter side, resized to ``size``."""
    height, width = image.shape[:2]
    side = int(min(height, width) * rng.uniform(0.5, 1.0))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return _resize_square(image[top:top + side, left:left + side], size)


def clean_images(count: int, size: int = 256, seed: int = 0,
                 real_fraction: float = 0.5) -> list[np.ndarray]:
    """``count`` clean float32 sRGB ``size``×``size``×3 images, deterministic in ``seed``.

    Each entry is, with probability ``real_fraction``, a random square crop (50–100% of the
    shorter side, random position) of a real image from :data:`IMAGE_NAMES`, else a
    :func:`procedural_scene` with a seed drawn from ``seed``.
    """
    _check_size(size)
    if count < 0 or not 0.0 <= real_fraction <= 1.0:
        raise InvalidInputError(
            f"count must be >= 0 and real_fraction in [0, 1]; got {count!r}, {real_fraction!r}")
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        if rng.random() < real_fraction:
            name = IMAGE_NAMES[int(rng.integers(len(IMAGE_NAMES)))]
            images.append(_random_crop(rng, _to_float_rgb(_load_uint8(name)), size))
        else:
            images.append(procedural_scene(size, seed=int(rng.integers(2**31))))
    return images


# --------------------------------------------------------------------------------------------
# Writing

SAVE_TOLERANCE = 1e-6
"""How far outside [0, 1] :func:`save_image` lets float rounding overshoot (then clips)."""


def save_image(path: str | os.PathLike, image, bits: int = 8) -> Path:
    """Write an sRGB image as a PNG of ``bits`` (8 or 16) per channel; returns the path.

    ``image``: a numpy array H×W×3, or a torch tensor 3×H×W or 1×3×H×W (a model's output;
    moved to the CPU), floating point with values in [0, 1] (sRGB-encoded, not linear: nothing
    is converted). Each value is quantised as ``round(x·255)`` or ``round(x·65535)``. Values at
    most ``SAVE_TOLERANCE`` (1e-6) outside [0, 1] (float rounding) are clipped; anything further
    out raises ``InvalidInputError``, as do NaN/inf, integer or boolean data (already quantised:
    divide by its maximum first), other shapes, ``bits`` other than 8 and 16, a name not ending
    in ``.png`` and a folder that does not exist.

    The PNG is encoded in memory (OpenCV, for both depths: Pillow cannot write 16-bit RGB),
    written to a temporary file in the same folder and renamed onto ``path`` (``os.replace``),
    so a failure never leaves a partial file there and an existing file is replaced whole.
    """
    path = Path(path)
    if bits not in (8, 16):
        raise InvalidInputError(f"save_image: bits must be 8 or 16, got {bits!r}")
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"save_image writes PNG files: {path} should end in .png")
    if not path.parent.is_dir():
        raise InvalidInputError(f"save_image: folder {path.parent} does not exist")
    rgb = _as_hwc_rgb(image)
    maximum = 255 if bits == 8 else 65535
    dtype = np.uint8 if bits == 8 else np.uint16
    quantised = np.rint(rgb.astype(np.float64) * maximum).astype(dtype)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(quantised[..., ::-1]))  # OpenCV is BGR
    if not ok:
        raise InvalidInputError(f"save_image: OpenCV could not encode a {rgb.shape} PNG")
    # Not mkstemp: its 0600 mode would stick to the image; os.open applies the umask as usual.
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(encoded.tobytes())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _as_hwc_rgb(image) -> np.ndarray:
    """Validate ``image`` for :func:`save_image`; return it as a float H×W×3 array in [0, 1]."""
    torch = sys.modules.get("torch")  # a tensor means torch is imported; never import it here
    if torch is not None and isinstance(image, torch.Tensor):
        shape = tuple(image.shape)
        if image.ndim == 4 and shape[0] == 1:
            image = image[0]
        if image.ndim != 3 or image.shape[0] != 3:
            raise InvalidInputError(
                f"save_image: a tensor must be 3×H×W or 1×3×H×W (RGB), got shape {shape}")
        if not image.is_floating_point():
            raise InvalidInputError(
                f"save_image: expected floating-point values in [0, 1], got dtype {image.dtype}; "
                "divide quantised values by their maximum")
        array = image.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise InvalidInputError(
                f"save_image: a numpy image must be H×W×3 (RGB), got shape {image.shape}")
        if not np.issubdtype(image.dtype, np.floating):
            raise InvalidInputError(
                f"save_image: expected floating-point values in [0, 1], got dtype {image.dtype}; "
                "divide quantised values by their maximum")
        array = image
    else:
        raise InvalidInputError(
            f"save_image: expected a numpy array or torch tensor, got {type(image).__name__}")
    if array.size == 0:
        raise InvalidInputError(f"save_image: the image is empty (shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise InvalidInputError("save_image: the image contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < -SAVE_TOLERANCE or high > 1.0 + SAVE_TOLERANCE:
        raise InvalidInputError(
            f"save_image: values must lie in [0, 1] (sRGB), got [{low:.6g}, {high:.6g}]; clip or "
            "rescale first")
    return np.clip(array, 0.0, 1.0)
