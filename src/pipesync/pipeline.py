"""The shared pipeline: loaded from ``mappings/pipeline.yaml``, or the built-in default."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pipesync.model import SharedPipeline
from pipesync.yamlfile import load_model

DEFAULT_PIPELINE_FILE = "pipeline.yaml"


def default_pipeline_path() -> Path:
    """The default shared pipeline shipped inside the package (a copy of mappings/pipeline.yaml)."""
    return Path(str(resources.files("pipesync.defaults").joinpath(DEFAULT_PIPELINE_FILE)))


def load_pipeline(path: str | Path | None = None) -> SharedPipeline:
    return load_model(path or default_pipeline_path(), SharedPipeline)
