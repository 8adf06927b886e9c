"""The catalogue's names as plain strings: the datasets, formats, splits and releases.

Apart from :mod:`kmnist.catalogue.manifest` (whose frozen dataclasses cost
the dataclasses module and its imports) so that ``kmnist-download --help``
shows the choices without loading the catalogue. The manifest takes its
names from here; tests/test_architecture.py checks that its datasets and
formats are these.
"""

from __future__ import annotations

CURRENT_RELEASE = "2019"
RELEASES = ("2019", "2018")
SPLITS = ("train", "test", "all")
DATASET_NAMES = ("kmnist", "k49", "kkanji")  # the catalogue's order
FORMAT_NAMES = ("mnist", "npz", "tar")  # sorted
# Mirrors from the environment: whitespace-separated, replacing the built-in list.
MIRROR_ENV = "KMNIST_MIRROR"
