"""How a failed download is told: the one renderer of the download path's failures.

Each mirror that could not be reached is said once, first, numbered, with its
URL and the reason in plain words; then one line per file that names the file
and, for those mirrors, points up to them ("mirror 1 above"); what another
mirror answered is said in the file's line. A file that could not be built
from its MNIST-format source either says so in the same line, flattened (the
source's own failure, never nested in the file's). Last, a hint built from
what this run tried, or none: nothing the run just tried, found down, or
that ``--mirror`` replaced is suggested again.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DownloadError, DownloadsFailed, KmnistError, Refusal

# typing and pathlib cost ~5 ms of a 25 ms `--help` (benchmarks/startup.py);
# this module is imported only once a run has failed, but stays as light.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..catalogue.manifest import Entry, Mirror

# The built-in copies that carry KMNIST in the MNIST format only: what "-f mnist" would use.
CDN_MIRRORS = ("gcs-s4tf", "huggingface")


def flat(failures: Sequence[BaseException]) -> list[BaseException]:
    """The failures of a run, one level: a DownloadsFailed opened up."""
    out: list[BaseException] = []
    for f in failures:
        out += flat(f.failures) if isinstance(f, DownloadsFailed) else [f]
    return out


def render(failures: Sequence[BaseException]) -> list[str]:
    """The lines that tell ``failures`` (without the program's prefix), in the order to print.

    A failure that is not a download's (a folder, a link) is its own line,
    said once: the files of one folder all fail on its problem, in words that
    name the folder, not the file (five identical lines for one ``.kmnist``).
    """
    failures = flat(failures)
    numbers = _down_mirrors(failures)
    lines = [
        f"mirror {n} ({name}) could not be reached: {reason}; not tried again in this run"
        for (name, reason), n in numbers.items()
    ]
    by_name = {name: n for (name, _), n in numbers.items()}
    for f in failures:
        if isinstance(f, DownloadError):
            if not f.whole_mirror:
                lines.append(_file_line(f, by_name))
        elif (line := _other(f)) not in lines:
            lines.append(line)
    return lines


def _down_mirrors(failures: Sequence[BaseException]) -> dict[tuple[str, str], int]:
    """(mirror, reason) -> its number, for every mirror found down, in the order met."""
    numbers: dict[tuple[str, str], int] = {}
    seen: set[str] = set()
    for r in _refusals(failures):
        if r.down and r.mirror not in seen:
            seen.add(r.mirror)
            numbers[(r.mirror, r.reason)] = len(numbers) + 1
    return numbers


def _refusals(failures: Sequence[BaseException]) -> list[Refusal]:
    """Every mirror's answer in ``failures``, those of a failed build's source too."""
    out: list[Refusal] = []
    for f in failures:
        if isinstance(f, DownloadError):
            out += f.refusals
            if f.not_built is not None:
                out += _refusals([f.not_built])
    return out


def _file_line(f: DownloadError, down: dict[str, int]) -> str:
    line = f"{f.path}: could not be fetched: {_why(f, down)}"
    if f.not_built is not None:
        cause = f.not_built
        if isinstance(cause, DownloadError):
            how = f"{cause.path} could not be fetched: {_why(cause, down)}"
        else:
            how = _other(cause)
        line += f"; nor built from the MNIST-format file ({how})"
    return line


def _why(f: DownloadError, down: dict[str, int]) -> str:
    if not f.refusals:
        return "no mirror in the list carries it"
    said = [f"{r.mirror}: {r.reason}" for r in f.refusals if not r.down]
    numbers = sorted({down[r.mirror] for r in f.refusals if r.down and r.mirror in down})
    if numbers:
        which = ", ".join(str(n) for n in numbers)
        said.append(f"mirror{'s' if len(numbers) > 1 else ''} {which} above")
    return "; ".join(said)


def _other(f: BaseException) -> str:
    if isinstance(f, OSError):
        from ..storage.folders import explain

        return explain(f)
    return str(f)


def hint(
    failures: Sequence[BaseException],
    *,
    catalogue: Sequence[Entry] | None = None,
    mirrors: Sequence[Mirror] | None = None,
    command: str = "the same command",
) -> str:
    """What could work next, from what this run tried; "" when nothing new is left to suggest.

    ``mirrors``: the run's mirrors (None: those the failure carries, else the
    built-in list). ``catalogue``: where the failed files' datasets are
    looked up (None: the manifest's). ``command``: what the user reruns with
    a flag added (after the questions: the command they printed, "above").
    """
    from ..catalogue.manifest import MIRROR_ENV, entry_for
    from ..downloader.transfer import PROXY_FAILED

    run_mirrors = _run_mirrors(failures, mirrors)  # before opening up: the run's error has them
    failures = flat(failures)
    downloads = [f for f in failures if isinstance(f, DownloadError) and not f.whole_mirror]
    if not downloads:
        return ""
    names = {m.name for m in run_mirrors}
    refusals = _refusals(downloads)
    down = {r.mirror for r in refusals if r.down}
    entries = [e for e in (entry_for(f.path, entries=catalogue) for f in downloads) if e]
    parts = []
    if any(not r.down for r in refusals):
        parts.append(f"run {command} with --check-mirrors to see which mirror answers")
    # -f mnist only while the CDN copies are in this run's list and not found
    # down, the MNIST-format files were not just tried for a build, and some
    # mirror could be reached at all (else the network is the problem).
    cdn_usable = all(n in names and n not in down for n in CDN_MIRRORS)
    mnist_tried = any(f.not_built is not None for f in downloads)
    offline = all(f.unreachable for f in downloads)
    if (
        cdn_usable
        and not mnist_tried
        and not offline
        and any(e.dataset == "kmnist" and e.format == "npz" for e in entries)
    ):
        parts.append("-f mnist fetches the same images from the CDN copies")
    if any(e.dataset in ("k49", "kkanji") for e in entries):
        if "wayback" in names:
            parts.append(
                "Kuzushiji-49 and Kuzushiji-Kanji exist only on the official host and the "
                "Internet Archive, both tried: try again later, or from another network"
            )
        else:
            # The user's list replaced the built-in one: not suggested back.
            parts.append(
                "Kuzushiji-49 and Kuzushiji-Kanji exist only on the official host, the "
                "Internet Archive and copies of them: a mirror given must be such a copy"
            )
    if offline and any(PROXY_FAILED in r.reason for r in refusals):
        # Not the mirrors: the proxy the environment sets, on the way to them.
        parts.append(
            "the proxy that $https_proxy / $http_proxy (or $all_proxy) names could not be"
            " used: fix or unset it, or add the mirror's host to $no_proxy"
        )
    elif all(f.unreachable for f in downloads):
        parts.append(
            f"no mirror could be reached from here: give one you can reach with --mirror URL "
            f"or {MIRROR_ENV} (a copy's folder works too)"
        )
    else:
        parts.append(f"another mirror: --mirror URL or {MIRROR_ENV}")
    return "; ".join(parts)


def _run_mirrors(
    failures: Sequence[BaseException], mirrors: Sequence[Mirror] | None
) -> Sequence[Mirror]:
    from ..catalogue.manifest import BUILTIN_MIRRORS, Mirror

    if mirrors is not None:
        return mirrors
    for f in failures:
        if isinstance(f, KmnistError) and f.mirrors:
            return [m for m in f.mirrors if isinstance(m, Mirror)]
    return BUILTIN_MIRRORS


__all__ = ["hint", "render"]
