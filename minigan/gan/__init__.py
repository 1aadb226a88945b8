"""GAN models, losses, trainers and the training run."""
from .graph import GraphedStep
from .models import PRESETS, build_models
from .trainer import DRAGANTrainer, GANTrainer, TrainConfig, make_trainer

__all__ = ["PRESETS", "build_models", "DRAGANTrainer", "GANTrainer", "GraphedStep",
           "TrainConfig", "make_trainer"]
