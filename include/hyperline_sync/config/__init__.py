"""The pipelines config: typed models, the YAML loader with ${VAR} expansion, and the mapping section.

`models` (pipeline, state, tuning), `sources`, `mapping` hold the pydantic models; `loader` reads
the file; `errors` words every problem. The public names are re-exported here.
"""

from hyperline_sync.config.errors import ConfigError
from hyperline_sync.config.loader import CONFIG_ENV, PipelineSet, load_config, parse_config, read_pipelines
from hyperline_sync.config.mapping import MappingConfig, PropertyRule, parse_mapping
from hyperline_sync.config.models import (
    DAG_ID_PREFIX,
    Config,
    PipelineConfig,
    S3ArchiveSourceConfig,
    SourceConfig,
    StateConfig,
    TuningConfig,
    WarehouseSourceConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DAG_ID_PREFIX",
    "Config",
    "ConfigError",
    "MappingConfig",
    "PipelineConfig",
    "PipelineSet",
    "PropertyRule",
    "S3ArchiveSourceConfig",
    "SourceConfig",
    "StateConfig",
    "TuningConfig",
    "WarehouseSourceConfig",
    "load_config",
    "parse_config",
    "parse_mapping",
    "read_pipelines",
]
