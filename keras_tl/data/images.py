"""Tasks from image folders: `images:DIR` (one subfolder per class), decoded with PIL.

A folder larger than `MAX_IN_MEMORY_BYTES` is decoded once into keras-tl's data
cache and read from disk a batch at a time.
"""

import functools
import hashlib
import os

import numpy as np

from keras_tl.data import ondisk
from keras_tl.data.files import fill_splits, parse_spec
from keras_tl.data.task import SPLITS, Task, one_line
from keras_tl.errors import DataError


def _subfolders(folder):
    return sorted(
        entry.name for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _pil_image():
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "images: tasks read files with Pillow, which is not installed. Install it "
            "with `pip install pillow`."
        ) from None
    return Image


@functools.lru_cache(maxsize=1)
def _image_extensions():
    return frozenset(_pil_image().registered_extensions())


def _image_files(folder):
    extensions = _image_extensions()
    files = sorted(
        entry.name for entry in os.scandir(folder)
        if entry.is_file() and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in extensions
    )
    if not files:
        raise DataError(
            f"Class folder {folder!r} has no image files. Expected .png, .jpg, .bmp, "
            f"... files in every class folder; remove the folder or add images."
        )
    return [os.path.join(folder, file) for file in files]


def _load_image(path, size, mode):
    Image = _pil_image()
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if mode == "rgb" else "L")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype="float32") / 255.0
    except Exception as error:
        raise DataError(
            f"Cannot read image {path!r} ({type(error).__name__}: {one_line(error)}). "
            f"Replace or delete the file."
        ) from None
    return pixels if mode == "rgb" else pixels[..., np.newaxis]


# Largest side an image is resized to: far above any network's input, small
# enough that one decoded image cannot exhaust memory.
MAX_SIDE = 4096


def _parse_size(name, text):
    height, _, width = text.lower().partition("x")
    valid = height.isdigit() and width.isdigit()
    if not (valid and int(height) > 0 and int(width) > 0):
        raise DataError(
            f"Task {name!r}: size must be HEIGHTxWIDTH in pixels, e.g. size=64x64. "
            f"Received: size={text!r}."
        )
    if max(int(height), int(width)) > MAX_SIDE:
        raise DataError(
            f"Task {name!r}: size must be at most {MAX_SIDE}x{MAX_SIDE} pixels. "
            f"Received: size={text!r}. Use a size your network takes, e.g. size=64x64."
        )
    return int(height), int(width)


def images_task(name):
    folder, options = parse_spec(name, "images:", ("size", "mode"))
    mode = options.get("mode", "rgb")
    if mode not in ("rgb", "grayscale"):
        raise DataError(
            f"Task {name!r}: mode must be rgb or grayscale. Received: mode={mode!r}."
        )
    size = _parse_size(name, options["size"]) if "size" in options else None
    if not os.path.isdir(folder):
        raise DataError(
            f"Image folder not found: {folder!r} (from task {name!r}). Expected a "
            f"folder with one sub-folder of images per class; check the path."
        )
    top = _subfolders(folder)
    if "train" in top and set(top) <= set(SPLITS):
        split_folders = {split: os.path.join(folder, split) for split in top}
    else:
        split_folders = {"train": folder}
    class_names = _subfolders(split_folders["train"])
    files = {}
    for split, split_folder in split_folders.items():
        classes = _subfolders(split_folder)
        if not classes:
            raise DataError(
                f"{split_folder!r} has no class sub-folders. Expected one sub-folder "
                f"per class holding its images (DIR/cat/1.png, DIR/dog/2.png), "
                f"optionally inside DIR/train, DIR/val, DIR/test."
            )
        extra = sorted(set(classes) - set(class_names))
        if extra:
            raise DataError(
                f"{split_folder!r} has class folder(s) {', '.join(extra)} that "
                f"{split_folders['train']!r} lacks. Every class needs training images."
            )
        files[split] = [
            (path, class_names.index(name_))
            for name_ in classes
            for path in _image_files(os.path.join(split_folder, name_))
        ]
    if len(class_names) < 2:
        raise DataError(
            f"{split_folders['train']!r} has one class folder ({class_names[0]}). "
            f"Expected at least two: one sub-folder per class."
        )
    if size is None:
        first = _load_image(files["train"][0][0], None, mode)
        size = first.shape[:2]
    image_shape = (*size, 3 if mode == "rgb" else 1)
    num_images = sum(len(pairs) for pairs in files.values())
    on_disk = num_images * int(np.prod(image_shape)) * 4 > ondisk.MAX_IN_MEMORY_BYTES
    key = _images_key(files, image_shape) if on_disk else None
    arrays = {}
    for split, pairs in files.items():
        paths = [path for path, _ in pairs]
        disk_name = f"images-{key}-{split}.f32" if on_disk else None
        arrays[f"x_{split}"] = _decode_images(paths, image_shape, mode, disk_name)
        arrays[f"y_{split}"] = np.asarray([label for _, label in pairs], dtype="int64")
    fill_splits(
        repr(folder), "classification", arrays,
        "Add images (each class needs about 5 for a 60/20/20 split) or use "
        "train/val/test sub-folders.",
    )
    return Task(name=name, kind="classification", num_outputs=len(class_names),
                class_names=tuple(class_names), **arrays)


# Part of the key of decoded image folders: bump it when `_load_image` changes.
_DECODER_VERSION = 1


def _images_key(files, image_shape):
    """Names an image folder's decoded files: every file's path, label, size and
    modification time, the decoded image shape and the decoder's version."""
    digest = hashlib.sha256(f"{_DECODER_VERSION}|{image_shape}".encode())
    for split in sorted(files):
        for path, label in files[split]:
            stat = os.stat(path)
            digest.update(
                f"{split}|{os.path.abspath(path)}|{label}|{stat.st_size}|"
                f"{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:24]


def _decode_images(paths, image_shape, mode, disk_name):
    """The images as one float32 array, in memory (`disk_name` None) or as a
    `DiskArray` in the data cache, decoded once and reused by later loads."""
    size = image_shape[:2]
    if disk_name is None:
        images = np.empty((len(paths), *image_shape), dtype="float32")
        for index, path in enumerate(paths):
            images[index] = _load_image(path, size, mode)
        return images
    shape = (len(paths), *image_shape)
    cached = os.path.join(ondisk.cache_dir(), disk_name)
    # One process decodes; the others (workers loading the task at once) wait
    # for it and then read its file.
    with ondisk.exclusive(disk_name):
        if os.path.exists(cached) and os.path.getsize(cached) == 4 * np.prod(shape):
            return ondisk.DiskArray(cached, shape)
        writer = ondisk.RowWriter(disk_name)
        try:
            for path in paths:
                writer.write(_load_image(path, size, mode)[np.newaxis])
        except BaseException:
            writer.abort()
            raise
        return writer.finish()
