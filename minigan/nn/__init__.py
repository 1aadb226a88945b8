"""Neural-network building blocks with PyTorch's names and conventions."""
from . import functional, init, utils  # noqa: F401
from .container import ModuleDict, ModuleList, Sequential
from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout,
                     Embedding, Flatten, Identity, LeakyReLU, Linear, MaxPool2d, ReLU, Sigmoid,
                     Softplus, Tanh, Unflatten, Upsample)
from .layers import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh,
                     LogSigmoid, LogSoftmax, Mish, PReLU, ReLU6, RReLU, SiLU, Softmax, Softmin,
                     Softshrink, Softsign, Tanhshrink, Threshold)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss)
from .loss import (CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss, KLDivLoss,
                   MarginRankingLoss, MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss,
                   SoftMarginLoss, TripletMarginLoss)
from .extra import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad3d,
                    Conv1d, ConvTranspose1d, LocalResponseNorm, ParameterDict, ParameterList,
                    ReflectionPad1d, ReflectionPad3d, ReplicationPad1d, ReplicationPad3d, RMSNorm,
                    Softmax2d, UpsamplingBilinear2d, UpsamplingNearest2d, ZeroPad1d, ZeroPad3d)
from .dropout import AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .fold_bilinear import Bilinear, Fold, Unfold
from .module import Module, Parameter, StateDictError
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .transformer import (MultiheadAttention, Transformer, TransformerDecoder,
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
                      AvgPool1d, LPPool1d, LPPool2d, MaxPool1d, MaxUnpool2d)
from .normalization import (ConstantPad2d, CosineSimilarity, GroupNorm, InstanceNorm1d,
                            InstanceNorm2d, LayerNorm, PairwiseDistance, PixelShuffle,
                            PixelUnshuffle, ReflectionPad2d, ReplicationPad2d, ZeroPad2d)

__all__ = ["CosineEmbeddingLoss", "GaussianNLLLoss", "HingeEmbeddingLoss", "KLDivLoss",
           "MarginRankingLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss",
           "SoftMarginLoss", "TripletMarginLoss"] + [
           "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
           "ConstantPad2d", "Conv2d", "ConvTranspose2d", "CosineSimilarity", "CrossEntropyLoss",
           "Dropout", "Embedding", "Flatten", "GroupNorm", "HuberLoss", "Identity",
           "InstanceNorm1d", "InstanceNorm2d", "L1Loss", "LayerNorm", "LeakyReLU", "Linear",
           "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss",
           "PairwiseDistance", "Parameter", "PixelShuffle", "PixelUnshuffle", "ReLU",
           "ReflectionPad2d", "ReplicationPad2d", "Sequential", "Sigmoid", "SmoothL1Loss",
           "Softplus", "StateDictError", "Tanh", "Unflatten", "Upsample", "ZeroPad2d",
           "functional", "init", "utils"] + [
    "CELU", "ELU", "GELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
    "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "RReLU", "ReLU6", "SELU", "SiLU", "Softmax",
    "Softmin", "Softshrink", "Softsign", "Tanhshrink", "Threshold"] + [
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad3d",
    "Conv1d", "ConvTranspose1d", "LocalResponseNorm", "ParameterDict", "ParameterList",
    "ReflectionPad1d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad3d", "RMSNorm",
    "Softmax2d", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad1d", "ZeroPad3d"] + [
    "AlphaDropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AvgPool1d", "LPPool1d", "LPPool2d", "MaxPool1d", "MaxUnpool2d"] + [
    "MultiheadAttention", "Transformer", "TransformerDecoder", "TransformerDecoderLayer",
    "TransformerEncoder", "TransformerEncoderLayer"] + [
    "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"] + [
    "Bilinear", "Fold", "Unfold"]
