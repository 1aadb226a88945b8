"""Neural-network building blocks with PyTorch's names and conventions."""
from . import functional, init, utils  # noqa: F401
from .container import ModuleDict, ModuleList, Sequential
from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout,
                     Embedding, Flatten, Identity, LeakyReLU, Linear, MaxPool2d, ReLU, Sigmoid,
                     Softplus, Tanh, Unflatten, Upsample)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss)
from .module import Module, Parameter, StateDictError

__all__ = ["AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d",
           "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "HuberLoss",
           "Identity", "L1Loss", "LeakyReLU", "Linear", "MSELoss", "MaxPool2d", "Module",
           "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid",
           "SmoothL1Loss", "Softplus", "StateDictError", "Tanh", "Unflatten", "Upsample",
           "functional", "init", "utils"]
