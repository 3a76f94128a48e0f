"""Every command-line flag of tfgender, and their conversion to frozen config dataclasses.

Library code never reads FLAGS: each ``bin/`` program calls one ``define_*_flags()`` at import
and one ``*_config_from_flags()`` in ``main``, then passes the config to the library. One
module per group of programs; this package exports them all.
"""

from tfgender.choices import DATA_SERVICE_ROLES, SOURCES
from tfgender.flags.common import FLAGS, config_from_flagfile
from tfgender.flags.data import (
    ConvertConfig,
    SampleDataConfig,
    convert_config_from_flags,
    define_convert_flags,
    define_sample_data_flags,
    sample_data_config_from_flags,
)
from tfgender.flags.evaluation import (
    ComparePeersConfig,
    EvaluateConfig,
    ExportConfig,
    PredictConfig,
    compare_peers_config_from_flags,
    define_compare_peers_flags,
    define_evaluate_flags,
    define_export_flags,
    define_predict_flags,
    evaluate_config_from_flags,
    export_config_from_flags,
    predict_config_from_flags,
)
from tfgender.flags.studies import (
    DataServiceConfig,
    EpochStudyConfig,
    data_service_config_from_flags,
    define_data_service_flags,
    define_epoch_study_flags,
    epoch_study_config_from_flags,
)
from tfgender.flags.train import (
    TrainConfig,
    cross_validate_options_from_flags,
    define_cross_validate_flags,
    define_sweep_flags,
    define_train_flags,
    sweep_options_from_flags,
    train_config_from_flags,
)

# The modules that define flags: bin/ programs list their flags as key flags (--helpshort).
DEFINING_MODULES = ("tfgender.flags.data", "tfgender.flags.evaluation", "tfgender.flags.studies",
                    "tfgender.flags.train")

__all__ = [
    "ComparePeersConfig", "ConvertConfig", "DATA_SERVICE_ROLES", "DEFINING_MODULES",
    "DataServiceConfig", "EpochStudyConfig", "EvaluateConfig", "ExportConfig", "FLAGS",
    "PredictConfig", "SOURCES", "SampleDataConfig", "TrainConfig",
    "compare_peers_config_from_flags", "config_from_flagfile", "convert_config_from_flags",
    "cross_validate_options_from_flags", "data_service_config_from_flags",
    "define_compare_peers_flags", "define_convert_flags", "define_cross_validate_flags",
    "define_data_service_flags", "define_epoch_study_flags", "define_evaluate_flags",
    "define_export_flags", "define_predict_flags", "define_sample_data_flags",
    "define_sweep_flags", "define_train_flags", "epoch_study_config_from_flags",
    "evaluate_config_from_flags", "export_config_from_flags", "predict_config_from_flags",
    "sample_data_config_from_flags", "sweep_options_from_flags", "train_config_from_flags",
]
