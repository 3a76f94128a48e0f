"""The names the library accepts for its options, in one module that imports nothing.

The config fields (``tfgender.config``) take their choices from here, and the flags generated
from them check them, so every program checks its command line before it imports TensorFlow
(a mistyped flag fails in a second, not after TensorFlow's ten); the modules that implement
each option check against the same tuple.
"""

OPTIMIZERS = ("adam", "adamw", "sgd")  # optim.create_optimizer
SCHEDULES = ("constant", "cosine", "step", "exponential")  # optim.StudySchedule
# devices.apply; ``onednn_bfloat16`` is oneDNN's graph rewrite of a float32 model;
# ``mixed_bfloat16_matmul`` is mixed_bfloat16 in the matmul-shaped layers only (the
# convolutions that are not depthwise and the hidden Dense layers), float32 elsewhere.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "onednn_bfloat16",
              "mixed_bfloat16_matmul")
JIT_COMPILE = ("auto", "true", "false")  # precision.resolve_jit
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")  # distribute.create_strategy
KERNEL_INITS = ("paper", "he")  # Levi & Hassner: the paper's Gaussian (stddev 0.01) or he_normal
# The architectures: each is the module tfgender/models/<name>.py (models.MODELS reads its
# builder, minimum size and normalisation there) and one line here: its default input side,
# whether it has the dense head of models/head.py (--head_units, --activation) and a width
# multiplier (--width_multiplier).
ARCHITECTURES = {
    "levi_hassner": {"size": 227, "head": False, "width": True},
    "resnet50": {"size": 224, "head": True, "width": False},
    "mobilenet_v2": {"size": 224, "head": True, "width": True},
}
MODELS = tuple(ARCHITECTURES)  # models.MODELS
# The hidden layers' activation of the head (Keras names; tests check each is one).
ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "swish", "elu", "selu", "leaky_relu", "mish",
               "tanh", "sigmoid", "softplus", "hard_silu", "linear")
# Levi & Hassner's fc6 and fc7, as published (models.levi_hassner): --head_units does not
# apply to it, and --dropout takes at most one rate for each.
LEVI_HASSNER_FC_UNITS = (512, 512)
BASE_BATCH_NORMS = ("train", "frozen")  # training.loop: the base's batch norm while it trains
CONV_NORMS = ("lrn", "batch")  # Levi & Hassner: the paper's LRN, or batch norm after every conv
AUGMENT_INTERPOLATIONS = ("auto", "bilinear", "nearest")  # augment.Augmentation
EARLY_STOPPING_METRICS = ("auc", "accuracy", "loss")  # eval metrics: training.loop, actions.better
EXPORT_FORMATS = ("saved_model", "tflite", "tflite_int8", "bundle")  # export.export
DATA_SERVICE_ROLES = ("dispatcher", "worker")  # data_service.serve
# data.readers.read_source
SOURCES = ("adience", "celeba", "utkface", "fairface", "folders", "table")
SAMPLE_FORMATS = ("adience", "celeba", "utkface")  # data.sample.make_sample_data
ADIENCE_IMAGE_SETS = ("aligned", "faces")  # data.adience.IMAGE_SETS
DETECTORS = ("mtcnn_haar", "mtcnn", "haar_default", "haar_alt2")  # evaluation.detect.DETECTORS
PEER_MODES = ("chip", "detect")  # experiments.peers.compare_peers
