"""Image folders through ``tf.data``: file paths -> read -> decode -> resize -> [cache] ->
shuffle -> batch -> prefetch.

Memory is bounded by the batch, a shuffle buffer of at most :data:`SHUFFLE_BYTES` of images and
``dataset.cache`` (none: decode every epoch; memory; disk: a temporary folder of the worker),
never by the folder's size. Images keep raw pixels (uint8 until batched, then float32, 0..255),
as the arrays datasets do: models rescale inside themselves.

The order of examples does not depend on ``dataset.cache``: the cache sits before the shuffle,
which is seeded by the trial, so the cache is a matter of speed only.

Decoding goes by the file's content, not its name: PNG (1, 8 or 16 bits, grey, palette, RGB(A)),
JPEG, BMP and GIF (the first frame), in any colour mode, converted to ``dataset.color_mode``;
alpha is dropped. A 16-bit PNG is scaled into 0..255 by the PNG standard's full 16-bit range
(so a 12-bit image stored as the standard says, its samples scaled up to 16 bits, spans the
range), or by ``2**dataset.bits_stored - 1`` for files that hold raw values (12: 0..4095).
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tensorflow as tf

if TYPE_CHECKING:  # splits imports this module when a split is read
    from sweeper.trial.splits import Decoding, Files

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BYTES = 64 << 20  # decoded images a training shuffle buffer holds at most
# Float32 pixels of one evaluation batch at most: a model's activations are many times its input
# (a 128x128 RGB image: 42 a batch), and evaluation must not need more memory than training.
BATCH_BYTES = 8 << 20
PNG_SIGNATURE = b"\x89PNG"
PNG_BIT_DEPTH = 24  # offset of the bit depth in a PNG file (signature, IHDR length, type, size)

_cache_files = itertools.count()
_cache_folder: Path | None = None


def decoded(files: Files, decoding: Decoding, name: str) -> tf.data.Dataset:
    """``(image uint8 [H, W, C], label)`` of ``files`` in their order, decoded in parallel."""
    read = _reader(decoding)
    ds = tf.data.Dataset.from_tensor_slices((files.paths, files.labels))
    ds = ds.map(lambda path, label: (read(path), label), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    if decoding.skip_corrupt:  # the preflight named none; a file may still fail to decode
        ds = ds.ignore_errors(log_warning=True)
    if decoding.cache == "memory":
        ds = ds.cache()
    elif decoding.cache == "disk":
        ds = ds.cache(str(_disk_cache() / f"{name}-{next(_cache_files)}"))
    return ds


def batches(decoded: tf.data.Dataset, batch_size: int, decoding: Decoding,
            seed: int | None = None) -> tf.data.Dataset:
    """Batches of ``(float32 pixels, label)``; shuffled every epoch when ``seed`` is given."""
    ds = decoded
    if seed is not None:
        ds = ds.shuffle(_shuffle_buffer(decoding, batch_size), seed=seed,
                        reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                  num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def fitting(size: int, decoding: Decoding) -> int:
    """A batch size of at most ``size`` whose float32 pixels stay under :data:`BATCH_BYTES`."""
    return max(1, min(size, BATCH_BYTES // (4 * _image_bytes(decoding))))


def _image_bytes(decoding: Decoding) -> int:
    height, width = decoding.image_size
    return height * width * decoding.channels


def _shuffle_buffer(decoding: Decoding, batch_size: int) -> int:
    return max(batch_size, SHUFFLE_BYTES // _image_bytes(decoding))


def _reader(decoding: Decoding) -> Any:
    """A function from a file path to its raw pixels at ``decoding.image_size``."""
    import keras

    height, width = decoding.image_size
    # Keras's own resizing, as image_dataset_from_directory does it. Shrinking is antialiased
    # (photos and X-rays are often shrunk a lot, and would alias), which costs about twice as
    # much; an image already at the size is left as it is.
    fit = {"crop_to_aspect_ratio": decoding.resize == "crop",
           "pad_to_aspect_ratio": decoding.resize == "pad"}
    shrink = keras.layers.Resizing(height, width, antialias=True, **fit)
    enlarge = keras.layers.Resizing(height, width, **fit)

    def resize(pixels: tf.Tensor) -> tf.Tensor:
        h, w = tf.shape(pixels)[0], tf.shape(pixels)[1]
        return tf.cond((h == height) & (w == width), lambda: pixels,
                       lambda: tf.cond((h > height) | (w > width), lambda: shrink(pixels),
                                       lambda: enlarge(pixels)))

    white16 = float(2 ** decoding.bits_stored - 1 if decoding.bits_stored else 65535)
    grey = decoding.channels == 1

    def png(contents: tf.Tensor) -> tf.Tensor:
        # Every PNG is read at 16 bits: an 8-bit sample v comes as v * 257, exactly.
        pixels = tf.cast(tf.io.decode_png(contents, channels=decoding.channels,
                                          dtype=tf.uint16), tf.float32)
        depth = tf.strings.substr(contents, PNG_BIT_DEPTH, 1)
        white = tf.where(depth == b"\x10", white16, 65535.0)
        return tf.minimum(pixels, white) * (255.0 / white)

    def other(contents: tf.Tensor) -> tf.Tensor:
        # TensorFlow converts GIF and BMP only to RGB(A), and a CMYK JPEG only to RGB.
        pixels = tf.cast(tf.io.decode_image(contents, channels=3, expand_animations=False),
                         tf.float32)
        return tf.image.rgb_to_grayscale(pixels) if grey else pixels

    def read(path: tf.Tensor) -> tf.Tensor:
        contents = tf.io.read_file(path)
        is_png = tf.strings.substr(contents, 0, len(PNG_SIGNATURE)) == PNG_SIGNATURE
        pixels = tf.cond(is_png, lambda: png(contents), lambda: other(contents))
        pixels = resize(pixels)
        pixels = tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 255.0)), tf.uint8)
        return tf.ensure_shape(pixels, (height, width, decoding.channels))

    return read


def _disk_cache() -> Path:
    """This process's folder for ``dataset.cache=disk``, removed when the process ends."""
    global _cache_folder
    if _cache_folder is None:
        _cache_folder = Path(tempfile.mkdtemp(prefix="sweeper-images-"))
        atexit.register(shutil.rmtree, _cache_folder, ignore_errors=True)
    return _cache_folder
