"""Neural-network building blocks with PyTorch's names and conventions."""
from . import functional, init  # noqa: F401
from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout,
                     Embedding, Flatten, Identity, LeakyReLU, Linear, MaxPool2d, ReLU, Sequential,
                     Sigmoid, Softplus, Tanh, Unflatten, Upsample)
from .module import Module, Parameter

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dropout",
           "Embedding", "Flatten", "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module",
           "Parameter", "ReLU", "Sequential", "Sigmoid", "Softplus", "Tanh", "Unflatten",
           "Upsample", "functional", "init"]
