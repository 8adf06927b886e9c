"""Text a person reads: sizes, the catalogue, plans and summaries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalogue.manifest import DATASETS, FORMATS, Entry, Mirror
from ..downloader.outcome import Check, Outcome
from ..downloader.plan import Action, Plan, Step
from ..units import size as size  # the one unit system, re-exported
from ..urls import redact

if TYPE_CHECKING:
    from ..catalogue.manifest import RemoteFile
    from ..downloader.probe import Probe
    from ..downloader.run import Result


def catalogue(entries: Iterable[Entry], mirrors: Sequence[Mirror]) -> str:
    """The files of ``entries`` with sizes, the datasets and formats they are of, the mirrors."""
    entries = list(entries)
    rows = [("dataset", "format", "split", "file", "size", "checked by")]
    for e in entries:
        f = e.file
        check = "sha256" if f.sha256 else "md5" if f.md5 else "structure (unverified)"
        given = file_size(f.size, e.dataset)
        rows.append((e.dataset, e.format or "any", e.split or "-", f.path, given, check))
    lines = _table(rows)
    lines.append("")
    lines.append("datasets:")
    shown = {e.dataset for e in entries}
    for d in DATASETS.values():
        if d.name in shown:
            lines.append(f"  {d.name:<7} {d.title}: {d.description}")
    lines.append("formats:")
    formats = {e.format for e in entries}
    for name, text in FORMATS.items():
        if name in formats:
            lines.append(f"  {name:<7} {text}")
    lines.append("mirrors, in the order they are tried:")
    for m in mirrors:
        scope = "some files" if m.carries is not None else "all files"
        lines.append(
            f"  {m.name:<12} {redact(m.template)}  "
            f"({scope}; release {', '.join(sorted(m.releases))})"
        )
    return _joined(lines)


def catalogue_json(entries: Iterable[Entry], mirrors: Sequence[Mirror]) -> str:
    """The same as data: every file with its checksums and the URLs that carry it.

    For fetching with other tools (wget, aria2c, a site's own mirror job) and
    checking with ``sha256sum``; the URLs are in the order we try them.
    """
    import json

    files = []
    for e in entries:
        f = e.file
        files.append(
            {
                "dataset": e.dataset,
                "release": e.release,
                "format": e.format,
                "split": e.split,
                "path": f.path,
                "size": f.size,
                "sha256": f.sha256,
                "md5": f.md5,
                "urls": [redact(m.url(f)) for m in mirrors if m.has(f, e.release)],
            }
        )
    doc = {
        "files": files,
        "mirrors": [
            {"name": m.name, "template": redact(m.template), "releases": sorted(m.releases)}
            for m in mirrors
        ],
    }
    return json.dumps(doc, indent=2)


# The widest action ("refetch"): the file column starts at the same place
# whatever the plan holds, so that plans can be compared by eye.
ACTION_WIDTH = max(len(a.value) for a in Action)


def on_disk(s: Step) -> str:
    """What the plan found on disk for one file, in words: the plan's "on disk" column."""
    if s.action is Action.FETCH:
        return "nothing"
    if s.action is Action.RESUME:
        return f"{size(s.have)} of {size(s.file.size)} (.part)"
    if s.action is Action.SKIP:
        return (
            {
                Check.DERIVED: "derived earlier, unchanged",
                Check.STRUCTURE: "structure checked (no published checksum)",
                Check.NOTHING: "there, unverified",
            }.get(s.check, "verified")
            if s.check is not None
            else "verified"
        )
    # REFETCH: a final file that is wrong, or verified and fetched again (--force).
    found = s.note or "verified; fetched again (--force)"
    if s.have:
        found += f"; {size(s.have)} of .part kept"
    return found


def plan(p: Plan, root: Path, mirrors: Sequence[Mirror]) -> str:
    """The plan as a table (action, file, size, on disk), then totals and the mirrors."""
    rows = [("action".ljust(ACTION_WIDTH), "file", "size", "on disk")]
    rows += [
        (
            s.action.value,
            s.target.relative_to(root).as_posix(),
            file_size(s.file.size, _dataset_of(s)),
            on_disk(s),
        )
        for s in p
    ]
    lines = _table(rows, right=(2,))
    lines.append(f"{_totals(p)} into {root}")
    lines.append("mirrors: " + ", ".join(m.name for m in mirrors))
    return _joined(lines)


def _totals(p: Plan) -> str:
    """What the plan does, counted by action, and the bytes it transfers."""
    todo = size(p.todo_bytes)
    if p.unknown_sizes:
        todo += f" plus {p.unknown_sizes} file(s) of unpublished size"
    counts = {a: sum(1 for s in p if s.action is a) for a in Action}
    summary = ", ".join(f"{n} to {a.value}" for a, n in counts.items() if n)
    return f"{summary or 'nothing to do'}; {todo} to transfer"


def file_size(n: int | None, dataset: str) -> str:
    """A file's size; for the one never published (the Kanji archive's), its stated one.

    ``--list`` and ``--dry-run`` showed ``?`` where the questions said "about
    296 MiB", and the command's page promised that figure everywhere.
    """
    if n is None and dataset in DATASETS and DATASETS[dataset].approx_bytes:
        return bytes_text(0, {dataset})
    return size(n)


def _dataset_of(s: Step) -> str:
    from ..catalogue.manifest import entry_for

    entry = entry_for(s.file.path)
    return entry.dataset if entry is not None else s.file.path.split("/", 1)[0]


def bytes_text(known: int, unpublished: set[str]) -> str:
    """``known`` bytes, plus the stated size of each dataset in ``unpublished``."""
    if not unpublished:
        return size(known)
    guess = known + sum(DATASETS[d].approx_bytes or 0 for d in unpublished if d in DATASETS)
    # In MiB like every other size on screen (the publisher's "310MB" is
    # decimal: about 296 MiB), rounded, as a figure in prose deserves.
    return f"about {guess / 2**20:,.0f} MiB"


def plan_by_dataset(p: Plan, root: Path, mirrors: Sequence[Mirror]) -> str:
    """The plan in a row per dataset and action, for a screen of 24 rows (the questions').

    The totals are :func:`plan`'s; the folder goes on a line of its own, so
    that a long one does not break the totals line.
    """
    groups: dict[tuple[str, Action], list[Step]] = {}
    for s in p:
        groups.setdefault((_dataset_of(s), s.action), []).append(s)
    rows = [("action".ljust(ACTION_WIDTH), "dataset", "files", "size")]
    for (name, action), steps in groups.items():
        known = sum(s.file.size or 0 for s in steps)
        # The Kanji archive's size was never published: its stated one, as
        # the questions showed it, not a "?".
        unpublished = {name} if any(s.file.size is None for s in steps) else set()
        rows.append((action.value, name, str(len(steps)), bytes_text(known, unpublished)))
    lines = _table(rows, right=(2, 3))
    lines.append(_totals(p))
    lines.append(f"into {root}")
    lines.append("mirrors: " + ", ".join(m.name for m in mirrors))
    return _joined(lines)


def results(rs: Sequence[Result], root: Path, seconds: float) -> str:
    """One aligned row per file (what happened, size, time, source, check), then totals."""
    # The time before the words: "checked: derived from ..." is long, and as
    # the last column it widens no other row.
    rows = [
        (
            r.action.value,
            r.target.relative_to(root).as_posix(),
            size(r.target.stat().st_size),
            f"{r.seconds:.1f} s" if r.mirror else "",
            f"from {r.mirror}" if r.mirror else "",
            f"checked: {checked(r)}",
        )
        for r in rs
    ]
    lines = _table(rows, right=(2, 3))
    total = sum(r.transferred for r in rs)
    lines.append(f"{len(rs)} file(s) ready in {root}; {size(total)} transferred in {seconds:.1f} s")
    for r in rs:
        if r.note:  # how a file was built and why, a built file replaced, a restart
            lines.append(f"note: {r.target.relative_to(root).as_posix()}: {r.note}")
    if any(r.checked is Check.DERIVED for r in rs):
        lines.append(
            "note: a file built from its MNIST-format file holds the published array, not the "
            "published bytes: --verify and kmnist.load check it against that file; a later run "
            "replaces it with the published one when a mirror has it; --no-derive never builds"
        )
    if any(not r.checked.verified for r in rs):
        lines.append(
            "note: no checksum was ever published for the 2018 release; its files were "
            "checked by structure only"
        )
    return _joined(lines)


def checked(r: Result) -> str:
    """How a file of the summary was checked, in words true for it.

    A skipped file was checked before this run (or while planning it): only
    a file with a published checksum is "already verified".
    """
    from ..downloader.derive import source_of

    if r.action is Outcome.SKIPPED:
        return {
            Check.DERIVED: "derived earlier, unchanged since",
            Check.STRUCTURE: "already there, structure checked (no published checksum)",
            Check.NOTHING: "already there, unverified (no checksum, no structure known)",
        }.get(r.checked, "already verified")
    if r.checked is Check.DERIVED:
        src = source_of(r.file)
        name = src.name if src is not None else "its source"
        return f"derived from {name} (arrays equal; {name} sha256 matches)"
    return str(r.checked.value)


def _table(rows: Sequence[tuple[str, ...]], *, right: tuple[int, ...] = ()) -> list[str]:
    """Rows in columns, each as wide as its own widest cell, two spaces apart.

    Trailing blanks are cut, so a long cell in the last column widens no
    row: callers put their long, varying words there. ``right``: columns
    aligned right (sizes, times).
    """
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def probes_text(files: Sequence[RemoteFile], probes: Sequence[Probe]) -> str:
    """``--check-mirrors``: what each mirror answered, then whether every file is served."""
    from ..downloader.probe import GOOD

    rows = [("mirror", "file", "status", "announced / published", "time", "verdict")]
    for p in probes:
        sizes = f"{size(p.announced)} / {size(p.published)}"
        rows.append(
            (
                p.mirror,
                p.file,
                str(p.status) if p.status is not None else "-",
                sizes,
                f"{p.seconds * 1000:.0f} ms",
                p.verdict.value + (f": {p.detail}" if p.detail else ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    good = {p.file for p in probes if p.verdict in GOOD}
    lacking = [f.path for f in files if f.path not in good]
    if lacking:
        lines.append(f"no mirror serves the right size of: {', '.join(lacking)}")
    else:
        lines.append(f"every one of the {len(files)} file(s) has a mirror that serves it")
    return _joined(lines)


def probes_json(files: Sequence[RemoteFile], probes: Sequence[Probe]) -> str:
    """``--check-mirrors --json``: the same, for machines."""
    from ..downloader.probe import GOOD, all_served

    good = {p.file for p in probes if p.verdict in GOOD}
    doc = {
        "ok": all_served(files, probes),
        "files": [{"path": f.path, "served": f.path in good} for f in files],
        "probes": [p.as_dict() for p in probes],
    }
    return json.dumps(doc, indent=2)


def _joined(lines: Iterable[str]) -> str:
    """The report's lines, each one line on screen: a folder or a reason with a
    newline in it (``$KMNIST_DATA``, a server's words) split a line in two."""
    from ..errors import one_line

    return "\n".join(one_line(line) for line in lines)
