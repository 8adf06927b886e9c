"""What it takes to repeat a baseline run: library versions, the machine, the inputs' sha256.

Facts only, gathered after the fact; nothing here changes how a run goes
(seeds, threads and deterministic kernels are :mod:`kmnist.baselines.cnn_model`'s).
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__

CHUNK = 1 << 20  # hashing reads 1 MiB at a time: K49's 66 MB never sits in memory whole


def versions(*modules: str) -> dict[str, str]:
    """Python's, this package's and each named, already imported module's version."""
    out = {"python": platform.python_version(), "kmnist": __version__}
    for name in modules:
        module = sys.modules.get(name)
        if module is not None:
            out[name] = str(getattr(module, "__version__", "unknown"))
    return out


def machine() -> dict[str, object]:
    """The operating system, CPU model and CPU count: what speed and default threads depend on."""
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
    }


def cpu_model() -> str:
    """The CPU's marketing name where Linux says it, else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sha256_files(root: Path, paths: Iterable[Path]) -> Mapping[str, str]:
    """Each file's sha256, keyed by its path relative to ``root`` (POSIX), in the given order."""
    out: dict[str, str] = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        try:
            key = path.relative_to(root).as_posix()
        except ValueError:
            key = path.as_posix()
        out[key] = digest.hexdigest()
    return out


def utc_now() -> str:
    """The current time, UTC, to the second, ISO 8601 with a ``Z``."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
