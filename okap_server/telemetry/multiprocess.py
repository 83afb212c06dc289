"""Where ``okap-server serve --workers N`` processes share their metrics.

prometheus-client keeps each process's values in memory-mapped files under
``PROMETHEUS_MULTIPROC_DIR``, read when the library is imported, so the serve command sets
it before the workers start (they are fresh interpreters), and a scrape of any worker sums
every worker's files. Files left by an earlier run would be counted again: they are
deleted at start. The directory is the operator's ``PROMETHEUS_MULTIPROC_DIR`` if set,
else ``<OKAP_HOME>/metrics``.
"""

from __future__ import annotations

import os
from pathlib import Path

from okap_server.settings import Settings

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory(settings: Settings) -> Path | None:
    """The shared directory this server needs, or None for one process without one."""
    if settings.prometheus_multiproc_dir is not None:
        return settings.prometheus_multiproc_dir
    return settings.home / "metrics" if settings.workers > 1 else None


def prepare(settings: Settings) -> Settings:
    """Empty (or create) the directory and name it in the environment the workers inherit;
    the settings then name it too."""
    directory = metrics_directory(settings)
    if directory is None:
        return settings
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # prometheus-client's files, nothing else
        stale.unlink(missing_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    return settings.model_copy(update={"prometheus_multiproc_dir": directory})
