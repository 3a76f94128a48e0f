"""The names the library accepts for its options, in one module that imports nothing.

The flags take their choices from here, so every program checks its command line before it
imports TensorFlow (a mistyped flag fails in a second, not after TensorFlow's ten), and the
modules that implement each option check against the same tuple.
"""

OPTIMIZERS = ("adam", "adamw", "sgd")  # optim.create_optimizer
SCHEDULES = ("constant", "cosine", "step", "exponential")  # optim.StudySchedule
# precision.apply; ``onednn_bfloat16`` is oneDNN's graph rewrite of a float32 model;
# ``mixed_bfloat16_matmul`` is mixed_bfloat16 in the matmul-shaped layers only (the
# convolutions that are not depthwise and the hidden Dense layers), float32 elsewhere.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "onednn_bfloat16",
              "mixed_bfloat16_matmul")
JIT_COMPILE = ("auto", "true", "false")  # precision.resolve_jit
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")  # distribute.create_strategy
KERNEL_INITS = ("paper", "he")  # Levi & Hassner: the paper's Gaussian (stddev 0.01) or he_normal
CONV_NORMS = ("lrn", "batch")  # Levi & Hassner: the paper's LRN, or batch norm after every conv
EXPORT_FORMATS = ("saved_model", "tflite", "tflite_int8")  # export.export
DATA_SERVICE_ROLES = ("dispatcher", "worker")  # data_service.serve
