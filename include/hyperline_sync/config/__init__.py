"""The pipelines config: typed models, the YAML loader with ${VAR} expansion, and the mapping section."""
