"""Contrastive training with torch: InfoNCE, batched augmentations, encoders, training, embed().

Importing this package needs torch (``pip install 'infogauss[train]'``); ``import infogauss``
does not.
"""

from ._torch import torch  # noqa: F401  (the fence: fails early with a clear message)
from .augment import (
    Augmentation,
    BitFlips,
    Identity,
    ImageAugment,
    SyntheticViews,
    get_augmentation,
    same_component_positives,
)
from .checkpoints import load_encoder
from .embed import embed
from .encoders import ENCODERS, Encoder, architecture_fingerprint, build_encoder
from .export import to_torch
from .knn import knn_accuracy, knn_predict
from .losses import gaussian_entropy, gaussian_regularizer, info_nce
from .text import embed_texts, load_offline_minilm
from .train import TrainConfig, TrainResult, load_checkpoint, train_contrastive, train_supervised

__all__ = [
    "Augmentation", "BitFlips", "Identity", "ImageAugment", "SyntheticViews",
    "get_augmentation", "same_component_positives",
    "embed", "embed_texts", "load_offline_minilm", "to_torch",
    "ENCODERS", "Encoder", "architecture_fingerprint", "build_encoder",
    "knn_accuracy", "knn_predict",
    "gaussian_entropy", "gaussian_regularizer", "info_nce",
    "TrainConfig", "TrainResult", "load_checkpoint", "train_contrastive", "train_supervised",
    "load_encoder",
]
