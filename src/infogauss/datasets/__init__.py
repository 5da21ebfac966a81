"""Datasets as numpy arrays (no torch): images are uint8 (N, 3, H, W), labels int64."""

from ._common import CIFAR10_CLASSES, LabeledImages, cache_dir, check_images
from .images import load_cifar10_zip, load_image_folder, load_tinyimagenet_zip

__all__ = [
    "CIFAR10_CLASSES", "LabeledImages", "cache_dir", "check_images",
    "load_cifar10_zip", "load_image_folder", "load_tinyimagenet_zip",
]
