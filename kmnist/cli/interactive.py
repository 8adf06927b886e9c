"""No arguments on a terminal: ask what to fetch, then download as the command does.

Asking is kept apart from deciding. The pure helpers build every choice from
the catalogue (the manifest's, or the one the caller passes, as the command
takes it) and check every answer; :class:`Prompts` only puts them to the
user and returns a :class:`Request`, the same choices the command's flags make;
:func:`interact` shows the plan, asks to go ahead and hands the files to
:func:`kmnist.cli.session.download`, where the command ends too. questionary (and
prompt_toolkit) are imported by the functions that ask, so that
``kmnist-download --help`` does not pay for them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

from ..catalogue.manifest import (
    BUILTIN_MIRRORS,
    CURRENT_RELEASE,
    DATASETS,
    FORMATS,
    MIRROR_ENV,
    SPLITS,
    TYPED_MIRROR,
    Entry,
    Mirror,
    RemoteFile,
    entry_for,
    files_of,
    mirrors_from,
    select,
    user_mirror,
)
from ..downloader.plan import Action
from ..errors import ExitStatus, StoppedAtQuestion, UsageError
from ..storage.folders import can_write_in
from ..storage.root import DATA_ENV, DEFAULT_DATA, data_root
from ..urls import redact
from .common import option_words
from .report import bytes_text

if TYPE_CHECKING:
    from prompt_toolkit.styles import Style
    from questionary import Question

    from ..downloader.plan import Plan
    from ..downloader.seams import Catalogue


def default_dir() -> str:
    """What the folder prompt offers: the command's --dir default, as the user would type it."""
    return os.environ.get(DATA_ENV, "").strip() or f"./{DEFAULT_DATA}"


# How each of the manifest's splits reads in a menu (a new split shows under its
# own name). Both first: the default, and what the command does without --split.
SPLIT_TITLES = {"all": "both (train and test)", "train": "train only", "test": "test only"}

# Asked when Kuzushiji-Kanji is chosen; yes is --extract. The figures are the
# published ones that kmnist.extract_kanji checks the result against.
UNPACK_QUESTION = "Unpack the Kanji archive after it? (~140,400 PNGs, checked)"

# Values of the source choices.
FROM_ENV, FROM_BUILTIN, FROM_TYPED = "env", "builtin", "typed"


@dataclass(frozen=True)
class Request:
    """What the user chose: the choices the command's flags make.

    ``formats`` has a format for every dataset, so that Kuzushiji-MNIST in
    MNIST format can come with Kuzushiji-49, which only has NumPy files.
    ``mirrors`` are what the user typed (or took from ``KMNIST_MIRROR``);
    empty means the command's default: ``KMNIST_MIRROR`` if set, else the
    built-in list, or the built-in list alone when ``builtin`` is set.
    """

    datasets: tuple[str, ...]
    formats: Mapping[str, str]
    split: str = "all"
    root: Path = field(default_factory=data_root)
    mirrors: tuple[str, ...] = ()
    builtin: bool = False
    extract: bool = False  # unpack the Kanji archive after the download (--extract)

    @classmethod
    def default(cls) -> Request:
        """What Enter through every prompt chooses."""
        first = next(iter(DATASETS.values()))
        return cls((first.name,), {first.name: first.default_format}, root=data_root())

    def entries(self, *, catalogue: Catalogue = None) -> tuple[Entry, ...]:
        return entries_of(self.datasets, self.formats, self.split, catalogue=catalogue)

    def mirror_list(self, env: Mapping[str, str]) -> tuple[Mirror, ...]:
        if self.mirrors:
            return tuple(user_mirror(m, TYPED_MIRROR) for m in self.mirrors)
        if self.builtin:
            return BUILTIN_MIRRORS
        return mirrors_from(None, dict(env))

    def argvs(self) -> list[list[str]]:
        """The command's arguments, one list per command needed.

        One command takes one ``--format`` for all its datasets, so datasets
        that keep their default format go together without ``--format`` and
        each other format gets a command of its own.
        """
        by_format: dict[str, list[str]] = {}
        for name in self.datasets:
            by_format.setdefault(self.formats[name], []).append(name)
        groups: list[tuple[list[str], str | None]]
        if len(by_format) == 1:
            # One format for all: say it, as a script should.
            groups = [(names, fmt) for fmt, names in by_format.items()]
        else:
            defaults = [n for n in self.datasets if self.formats[n] == DATASETS[n].default_format]
            groups = [(defaults, None)] if defaults else []
            for fmt, names in by_format.items():
                others = [n for n in names if n not in defaults]
                if others:
                    groups.append((others, fmt))
        common = ["--split", self.split, *option_words("--dir", str(self.root))]
        for m in self.mirrors:
            common += option_words("--mirror", m)
        argvs = []
        for group, group_format in groups:
            argv = [a for n in group for a in ("--dataset", n)]
            if group_format is not None:
                argv += ["--format", group_format]
            if self.extract and "kkanji" in group:
                argv.append("--extract")
            argvs.append(argv + common)
        return argvs

    def commands(self, launcher: str) -> list[str]:
        """The same request as command lines a shell (or a CI job) can run.

        ``launcher`` is the shell words that start the command, already
        quoted (:func:`launcher` finds them): ``kmnist-download`` or
        ``python -m kmnist``, never one quoted word.
        """
        prefix = f"{MIRROR_ENV}= " if self.builtin else ""
        return [f"{prefix}{launcher} {shlex.join(argv)}" for argv in self.argvs()]

    def shown_commands(self, launcher: str) -> list[str]:
        """:meth:`commands` as printed: lines of at most 80 columns, no password.

        A mirror's ``user:password@`` is ``***@`` (it was printed whole in
        the command for next time), and a last line says to put it back.
        """
        lines = []
        for command in self.commands(launcher):
            lines += wrapped(command, hide=True)
        if any(redact(m) != m for m in self.mirrors):
            lines.append("  (the mirror's password is shown as ***: put it back to run it)")
        return lines


# The terminal the questions are laid out for: every line they print fits it.
COLUMNS, ROWS = 80, 24
# A plan of more files than this is shown per dataset, so that the plan and
# the question under it stay on one 24-row screen (three datasets are 11 files).
PLAN_ROWS = 8


def wrapped(
    command: str, width: int = COLUMNS, indent: str = "  ", *, hide: bool = False
) -> list[str]:
    """``command`` as lines a shell reads back as the same command: broken only between words.

    Each line but the last ends in `` \\`` and every line fits ``width``
    (a word longer than that keeps a line of its own): a terminal's own
    wrapping broke words (``--dir dat|a``), and a pasted command failed.
    ``hide``: a URL's ``user:password@`` is shown as ``***@``.
    """
    quoted = [shlex.quote(redact(w) if hide else w) for w in shlex.split(command)]
    # A flag and its value stay on one line: "--dir /a/long/path", not "--dir \\".
    words: list[str] = []
    for word in quoted:
        if (
            words
            and words[-1].startswith("--")
            and " " not in words[-1]
            and not word.startswith("-")
        ):
            words[-1] += " " + word
        else:
            words.append(word)
    lines: list[str] = []
    line = indent + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) + 2 > width:  # room for " \\"
            lines.append(line + " \\")
            line = indent + "  " + word
        else:
            line += " " + word
    lines.append(line)
    return lines


def launcher(
    prog: str,
    *,
    argv0: str | None = None,
    python: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """The words that start this command again, as a shell runs them, quoted.

    ``prog`` is how the command was started (``kmnist-download``,
    ``download_data.py``, ``python -m kmnist``). An installed script is
    named alone when the shell finds it on PATH; otherwise, and for the
    other two, the interpreter that runs now: ``python`` when that is what
    PATH finds first, else its full path (a virtual environment not
    activated). ``download_data.py`` is not executable, so it gets the
    interpreter and the script's path as it was given (``argv0``).
    """
    python = sys.executable if python is None else python
    argv0 = sys.argv[0] if argv0 is None else argv0
    interpreter = python
    for name in ("python", "python3"):
        found = which(name)
        if found and os.path.abspath(found) == os.path.abspath(python):
            interpreter = name
            break
    if prog.endswith(".py"):
        script = argv0 if argv0 and Path(argv0).name == prog else prog
        return shlex.join([interpreter, script])
    if " " not in prog and which(prog):
        return shlex.quote(prog)
    return shlex.join([interpreter, "-m", "kmnist"])


# -- deciding: choices and checks built from the manifest ---------------------


@dataclass(frozen=True)
class Option:
    """One choice of a prompt, before questionary is imported."""

    title: str
    value: str
    description: str | None = None
    checked: bool = False


def entries_of(
    datasets: Sequence[str],
    formats: Mapping[str, str],
    split: str = "all",
    *,
    catalogue: Catalogue = None,
) -> tuple[Entry, ...]:
    """The catalogue's entries (None: the manifest's) for a dataset each in its own format."""
    return tuple(
        e for name in datasets for e in select(name, formats[name], split, entries=catalogue)
    )


def size_text(entries: Sequence[Entry]) -> str:
    """Bytes of ``entries``: exact where every size is published, else "about"."""
    known = sum(e.file.size for e in entries if e.file.size is not None)
    return bytes_text(known, {e.dataset for e in entries if e.file.size is None})


def on_disk(name: str, root: Path, *, catalogue: Catalogue = None) -> str | None:
    """Whether a dataset is already in ``root``: a few words, or None.

    Judged by file sizes alone, because hashing hundreds of megabytes to draw
    a menu would make the first question slow; the plan shown before
    anything is fetched hashes them.
    """
    dataset = DATASETS[name]
    partly = False
    for fmt in dataset.formats:
        files = files_of(select(name, fmt, entries=catalogue))
        present = [f for f in files if _size_matches(f, root)]
        if present and len(present) == len(files):
            fmt_note = f" ({fmt})" if len(dataset.formats) > 1 else ""
            sized = all(f.size is not None for f in files)
            return f"in {_shown(root)}{fmt_note}, {'sizes match' if sized else 'not checked yet'}"
        partly = partly or bool(present)
    return f"partly in {_shown(root)}" if partly else None


def _size_matches(f: RemoteFile, root: Path) -> bool:
    try:
        st = (root / f.path).stat()
    except OSError:
        return False
    return f.size is None or st.st_size == f.size


def _shown(root: Path) -> str:
    text = str(root)
    return text if root.is_absolute() or text.startswith(".") else f"./{text}"


def dataset_options(root: Path, *, catalogue: Catalogue = None) -> list[Option]:
    """The first question: every dataset with its size, and whether it is in ``root``."""
    options = []
    for i, ds in enumerate(DATASETS.values()):
        mark = on_disk(ds.name, root, catalogue=catalogue)
        label = f"{ds.title} ({ds.name})"
        title = f"{label:<25} {size_text(select(ds.name, entries=catalogue)):>12}"
        options.append(
            Option(
                title + (f"  [{mark}]" if mark else ""),
                ds.name,
                description=ds.description,
                checked=i == 0,
            )
        )
    return options


def format_options(name: str, *, catalogue: Catalogue = None) -> list[Option]:
    """The formats of a dataset, its default first, each with its size."""
    return [
        Option(
            f"{fmt:<6}{size_text(select(name, fmt, entries=catalogue)):>10}  {FORMATS[fmt]}", fmt
        )
        for fmt in DATASETS[name].formats
    ]


def split_options(
    datasets: Sequence[str], formats: Mapping[str, str], *, catalogue: Catalogue = None
) -> list[Option]:
    """The splits, each with the size of the datasets that have splits.

    A dataset without splits (Kuzushiji-Kanji, one archive) comes whole
    whichever is chosen, so it is named beside each choice, not added to it:
    added, it made "test only" look as big as everything.
    """
    split_names = [n for n in datasets if DATASETS[n].has_splits]
    whole = [n for n in datasets if not DATASETS[n].has_splits]
    note = None
    if whole:
        kept = ", ".join(
            f"{DATASETS[n].title} ({size_text(select(n, formats[n], entries=catalogue))})"
            for n in whole
        )
        note = f"plus {kept}, whole whatever the split"
    order = sorted(SPLITS, key=lambda s: s != "all")
    return [
        Option(
            f"{SPLIT_TITLES.get(s, s):<22} "
            f"{size_text(entries_of(split_names, formats, s, catalogue=catalogue)):>12}",
            s,
            description=note,
        )
        for s in order
    ]


def source_options(env: Mapping[str, str]) -> list[Option]:
    """Where from: ``KMNIST_MIRROR`` when set, the built-in mirrors, or a typed one."""
    builtin = [m.name for m in BUILTIN_MIRRORS if CURRENT_RELEASE in m.releases]
    options = []
    if env.get(MIRROR_ENV, "").split():
        options.append(
            Option(
                f"{MIRROR_ENV}: {redact(' '.join(env[MIRROR_ENV].split()))}",
                FROM_ENV,
                description="set in your environment",
            )
        )
    options.append(
        Option(
            "the built-in mirrors, in order",
            FROM_BUILTIN,
            description=", ".join(builtin),
        )
    )
    options.append(
        Option(
            "another mirror: a URL or a folder (type it next)",
            FROM_TYPED,
            description="laid out as <base>/<dataset>/<file>, or a template with {path}",
        )
    )
    return options


# What a refusal under a question may quote of a typed path: a row of 80
# columns, so that path and reason take two rows at most (a 5,000-character
# answer was quoted whole, 63 rows, more than the screen).
SHOWN_CHARS = 80


def _short(text: str) -> str:
    """``text`` quoted for a one-row message: escapes shown, the middle cut when long."""
    if len(text) > SHOWN_CHARS:
        half = SHOWN_CHARS // 2
        text = text[:half] + "..." + text[-half:]
    # repr escapes control characters and undecodable bytes; the outer quotes go.
    shown = repr(text)[1:-1]
    return shown if shown == text else repr(text)


def _unprintable(text: str) -> bool:
    """Whether ``text`` holds what a terminal cannot show as typed.

    Control characters (pasted ESC [ 2 J cleared the screen when the
    command for next time was printed) and bytes that are not UTF-8
    (shown as ``\\udcff``, a folder of another name when pasted back).
    """
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in text)


def check_folder(text: str) -> str | None:
    """Why ``text`` cannot be the destination folder, or None when it can."""
    from ..inputs import check_folder as check_path
    from ..inputs import not_a_folder

    if not text.strip():
        return "type a folder, for example ./data"
    typed = text.strip()
    if _unprintable(typed):
        return f"{_short(typed)} has control characters or bytes that are not text"
    # "scheme:/": the folder question's own completion turns a typed "//" into "/".
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", typed):
        return f"{_short(redact(typed))} is a URL: type a folder here (the mirror is asked next)"
    head = re.split(r"[/\\]", typed, maxsplit=1)[0]
    if head.startswith("~") and os.path.expanduser(head) == head:
        who = f"no user {head[1:]!r} here" if head[1:] else "no home folder is known"
        return f"{who}, so {_short(head)} names nothing: write the folder in full"
    try:
        path = check_path(os.path.expanduser(typed), "the folder")
    except UsageError as exc:
        return str(exc)
    shown = _short(str(path))
    try:
        # lexists: a link to nothing was taken for a folder to make, and the
        # run then failed on it ("--dir x is not a folder", a flag not given).
        probe = path
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        kind = not_a_folder(probe)
        if kind is not None:
            if probe == path:
                return f"{shown} is {kind}, not a folder"
            return f"{_short(str(probe))} is {kind}, so {shown} cannot be made"
    except OSError as exc:
        return f"{shown}: {exc.strerror or exc}"
    if can_write_in(probe):
        return None
    if probe == path:
        return f"{shown} is not writable"
    return f"{shown} cannot be made: {_short(str(probe))} is not writable"


def check_mirror(text: str) -> str | None:
    """Why ``text`` cannot be a mirror, or None when it can (nothing is fetched)."""
    if _unprintable(text.strip()):
        return f"{_short(redact(text.strip()))} has control characters or bytes that are not text"
    try:
        # Named as the question asked it: "--mirror 'a,b': give --mirror once
        # per mirror" spoke of a flag the user had not typed.
        mirror = user_mirror(text, TYPED_MIRROR)
    except UsageError as exc:
        return str(exc)
    if mirror.is_local:
        base = mirror.template.split("{", 1)[0].rstrip(os.sep) or os.sep
        if not os.path.isdir(base):
            return f"no folder {_short(base)}"
    return None


def todo_text(plan: Plan, *, catalogue: Catalogue = None) -> str:
    """Bytes a plan will transfer, with the stated size where none was published."""
    unpublished = set()
    for s in plan:
        entry = entry_for(s.file.path, entries=catalogue)
        if s.todo is None and entry is not None:
            unpublished.add(entry.dataset)
    return bytes_text(plan.todo_bytes, unpublished)


def go_ahead_question(plan: Plan, *, catalogue: Catalogue = None) -> str:
    """The last question, under the plan."""
    todo = sum(1 for s in plan if s.action is not Action.SKIP)
    if not todo:
        return "Everything is already there and verified. Go on?"
    return f"Download {todo} file(s), {todo_text(plan, catalogue=catalogue)}?"


def load_hint(entries: Sequence[Entry], root: Path, *, extracted: bool = False) -> list[str]:
    """Two lines that show how to load what was fetched, with kmnist's own loaders.

    For the Kanji archive, :func:`kmnist.extract_kanji` unless it was
    ``extracted`` already: never ``tarfile``'s ``extractall``, which trusts
    every path in the archive.
    """
    pick = next((e for e in entries if e.kind in ("images", "archive")), None)
    if pick is None:
        return []
    where = repr(root.as_posix())
    if pick.kind == "archive" and extracted:
        label, code = (
            "load with:",
            ["import kmnist", f"kanji = kmnist.load_kanji(root={where})  # paths and labels"],
        )
    elif pick.kind == "archive":
        label, code = (
            "unpack with:",
            [
                f"import kmnist; kmnist.extract_kanji(root={where})",
                f"kanji = kmnist.load_kanji(root={where})  # paths and labels",
            ],
        )
    else:
        label, code = (
            "load with:",
            [
                "import kmnist",
                f"x, y = kmnist.load({pick.dataset!r}, {pick.split!r}, root={where})",
            ],
        )
    return [f"{label:<13}{code[0]}", f"{'':<13}{code[1]}"]


def no_terminal_message(prog: str) -> str:
    again = launcher(prog)
    (command,) = Request.default().commands(again)
    why = terminal_problem() or "no terminal to ask on"
    return (
        f"{why}; pass the choices as flags instead, for example: {command}  "
        f"(every flag: {again} --help)"
    )


def terminal_problem() -> str | None:
    """Why the questions cannot be put here, in words; None when a person can answer."""
    try:
        ttys = all(s is not None and s.isatty() for s in (sys.stdin, sys.stdout))
    except ValueError:  # a closed stream
        ttys = False
    if not ttys:
        return "no terminal to ask on (stdin or stdout is not a terminal)"
    if os.environ.get("TERM") == "dumb":
        # Emacs' M-x shell and the like: the menus are drawn by moving the
        # cursor, and such a terminal showed their escape sequences as text,
        # arrows and all (the progress bars know it too: kmnist.downloader.progress).
        return "this terminal cannot draw the questions (TERM=dumb)"
    return None


def on_terminal() -> bool:
    """True when a person can answer: stdin and stdout are terminals that can draw the questions."""
    return terminal_problem() is None


def plain_style(env: Mapping[str, str]) -> Style | None:
    """A style without colour when ``NO_COLOR`` is set (https://no-color.org)."""
    if not env.get("NO_COLOR"):
        return None
    from questionary import Style

    # "noinherit" resets what questionary's default style (merged first) sets;
    # bold and reverse keep the question, the answer and errors apart.
    plain = ("qmark", "pointer", "selected", "separator", "instruction", "text", "disabled")
    return Style(
        [(cls, "noinherit") for cls in plain]
        + [
            ("question", "noinherit bold"),
            ("answer", "noinherit bold"),
            ("highlighted", "noinherit bold"),
            ("search_success", "noinherit bold"),
            ("search_none", "noinherit bold"),
            ("validation-toolbar", "noinherit reverse"),
            ("completion-menu", "noinherit"),
            ("completion-menu.completion.current", "noinherit reverse"),
            ("completion-menu.meta.completion", "noinherit"),
            ("completion-menu.meta.completion.current", "noinherit reverse"),
        ]
    )


# -- asking -------------------------------------------------------------------


def _ask(question: Question) -> Any:
    # unsafe_ask: Ctrl-C raises KeyboardInterrupt (ask() would swallow it and
    # return None). Ctrl-D at a text prompt means the same: stop here.
    try:
        return question.unsafe_ask()
    except (EOFError, KeyboardInterrupt):
        raise StoppedAtQuestion from None


def _choices(options: Sequence[Option]) -> list[Any]:
    from questionary import Choice

    return [
        Choice(o.title, value=o.value, description=o.description, checked=o.checked)
        for o in options
    ]


# prompt_toolkit keeps 8 rows free under a prompt for its completion menu,
# and its validation line comes after them: a refused folder was said 18 rows
# below the question. Without the reserve it is said on the row under it.
_ERRORS_UNDER_THE_QUESTION: dict[str, Any] = {"reserve_space_for_menu": 0}


def _validator(check: Callable[[str], str | None]) -> Callable[[str], bool | str]:
    """questionary's form of a check: True, or the reason shown under the prompt."""
    return lambda text: check(text) or True


# The user:password of a URL as it is typed: from "scheme://" to "@".
_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)([^/?#\s@]+)(?=@)")


def masked(text: str) -> str:
    """``text`` with each URL's ``user:password`` drawn as ``*`` (as many, so the cursor fits)."""
    return _PASSWORD.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)


def _password_hidden() -> Any:
    """A prompt_toolkit lexer that draws a typed URL's ``user:password`` as ``*``.

    The typed line stays on the screen after Enter: the password was left
    there in clear, above the plan that showed it as ``***@``.
    """
    from prompt_toolkit.document import Document
    from prompt_toolkit.lexers import Lexer

    class PasswordHidden(Lexer):
        def lex_document(self, document: Document) -> Callable[[int], Any]:
            lines = document.lines
            return lambda i: [("", masked(lines[i]))] if i < len(lines) else []

    return PasswordHidden()


@dataclass
class Prompts:
    """The questions, put to the user through questionary.

    ``catalogue``: the entries the choices and their sizes come from (None: the manifest's).
    """

    env: Mapping[str, str]
    style: Style | None = field(default=None)
    catalogue: Catalogue = None

    def request(self) -> Request:
        """Questions one to five: what, in which format and split, where to, from where."""
        datasets = self.datasets()
        formats = {
            n: self.format(n) if len(DATASETS[n].formats) > 1 else DATASETS[n].default_format
            for n in datasets
        }
        # Kuzushiji-Kanji alone has no split to choose.
        has_splits = any(DATASETS[n].has_splits for n in datasets)
        split = self.split(datasets, formats) if has_splits else "all"
        extract = self.unpack() if "kkanji" in datasets else False
        root = self.folder()
        mirrors, builtin = self.source()
        return Request(tuple(datasets), formats, split, root, mirrors, builtin, extract)

    def datasets(self) -> list[str]:
        import questionary

        chosen: list[str] = _ask(
            questionary.checkbox(
                "Which datasets?",
                choices=_choices(dataset_options(data_root(), catalogue=self.catalogue)),
                instruction="(arrows move, space selects, enter goes on)",
                validate=lambda v: True if v else "choose at least one: space selects",
                style=self.style,
            )
        )
        return chosen

    def format(self, name: str) -> str:
        import questionary

        fmt: str = _ask(
            questionary.select(
                f"Format of {DATASETS[name].title}?",
                choices=_choices(format_options(name, catalogue=self.catalogue)),
                style=self.style,
            )
        )
        return fmt

    def split(self, datasets: Sequence[str], formats: Mapping[str, str]) -> str:
        import questionary

        options = split_options(datasets, formats, catalogue=self.catalogue)
        split: str = _ask(
            questionary.select("Which split?", choices=_choices(options), style=self.style)
        )
        return split

    def unpack(self) -> bool:
        import questionary

        ok: bool = _ask(questionary.confirm(UNPACK_QUESTION, default=True, style=self.style))
        return ok

    def folder(self) -> Path:
        import questionary
        from prompt_toolkit.formatted_text import FormattedText

        default = default_dir()

        def check_default() -> str | None:
            # Enter alone (or spaces, as the answer is read) takes the default;
            # one from $KMNIST_DATA is named, as the user did not type it.
            why = check_folder(default)
            from_env = os.environ.get(DATA_ENV, "").strip()
            return f"${DATA_ENV}: {why}" if why and from_env else why

        # The default is shown (in the question, and greyed where the answer
        # goes), not pre-filled: questionary's default= is editable text, and
        # a typed path was appended to it ("./data/tmp/x"). Enter alone takes it.
        text: str = _ask(
            questionary.path(
                f"Where to? (a folder; Enter: {default})",
                only_directories=True,
                validate=_validator(lambda t: check_folder(t) if t.strip() else check_default()),
                placeholder=FormattedText([("class:placeholder", default)]),
                style=self.style,
                **_ERRORS_UNDER_THE_QUESTION,
            )
        )
        return Path(os.path.expanduser(text.strip() or default))

    def source(self) -> tuple[tuple[str, ...], bool]:
        import questionary

        how: str = _ask(
            questionary.select(
                "From where?", choices=_choices(source_options(self.env)), style=self.style
            )
        )
        if how == FROM_ENV:
            return tuple(self.env[MIRROR_ENV].split()), False
        if how == FROM_BUILTIN:
            # Say so only when it matters: KMNIST_MIRROR would replace them.
            return (), bool(self.env.get(MIRROR_ENV, "").split())
        # Short, so that a URL fits on the question's line at 80 columns; the
        # layout was said in the choice's description.
        typed: str = _ask(
            questionary.text(
                "Mirror URL or folder:",
                validate=_validator(check_mirror),
                lexer=_password_hidden(),
                style=self.style,
                **_ERRORS_UNDER_THE_QUESTION,
            )
        )
        return (typed.strip(),), False

    def go_ahead(self, plan: Plan) -> bool:
        import questionary

        ok: bool = _ask(
            questionary.confirm(
                go_ahead_question(plan, catalogue=self.catalogue), default=True, style=self.style
            )
        )
        return ok


def interact(
    *,
    prog: str,
    out: TextIO,
    env: Mapping[str, str] | None = None,
    catalogue: Catalogue = None,
) -> int:
    """The whole flow: ask, show the plan, confirm, download, say how to load.

    ``catalogue``: the entries to choose from, fetch, check and unpack (None:
    the manifest's), as ``kmnist.cli.download.main`` takes them.

    Raises what the command raises (``kmnist.cli.download.main`` turns it into an exit
    code), and a UsageError naming the flags to pass when there is no
    terminal to ask on, so that a script never waits on a prompt.
    """
    env = os.environ if env is None else env
    if not on_terminal():
        raise UsageError(no_terminal_message(prog))
    # A KMNIST_MIRROR no request could use (port 0, a control character) was
    # offered as the first source, and refused only after every question, as
    # "--mirror ...", a flag not given: said now, as the command says it.
    mirrors_from(None, dict(env))
    prompts = Prompts(env, plain_style(env), catalogue)
    request = prompts.request()
    return carry_out(
        request, prog=prog, out=out, env=env, go_ahead=prompts.go_ahead, catalogue=catalogue
    )


def carry_out(
    request: Request,
    *,
    prog: str,
    out: TextIO,
    env: Mapping[str, str],
    go_ahead: Callable[[Plan], bool],
    catalogue: Catalogue = None,
) -> int:
    """Question six and the download: the plan, a yes, then the command's own code."""
    from . import report, session

    entries = request.entries(catalogue=catalogue)
    again = launcher(prog)

    def confirm(plan: Plan, mirrors: Sequence[Mirror]) -> bool:
        show = report.plan if len(plan.steps) <= PLAN_ROWS else report.plan_by_dataset
        print(show(plan, request.root, mirrors), file=out)
        if not go_ahead(plan):
            return False
        print("the same as:", file=out)
        print("\n".join(request.shown_commands(again)), file=out)
        request.root.mkdir(parents=True, exist_ok=True)
        return True

    # The command's defaults for everything the questions do not ask.
    from ..downloader.request import DownloadOptions, DownloadRequest

    # The questions build what the command builds by default (no new question).
    options = DownloadOptions(
        mirrors=tuple(request.mirror_list(env)), catalogue=catalogue, derive=True
    )
    results = session.download(
        DownloadRequest(tuple(files_of(entries)), request.root, options), out=out, confirm=confirm
    )
    if results is None:
        print("Nothing was downloaded. To do it later without questions:", file=out)
        print("\n".join(request.shown_commands(again)), file=out)
        return ExitStatus.OK
    status: int = ExitStatus.OK
    if request.extract:
        # what --extract runs, on the same folder
        status = session.extract(
            root=request.root, force=False, quiet=False, out=out, catalogue=catalogue
        )
    for line in load_hint(entries, request.root, extracted=request.extract and status == 0):
        print(line, file=out)
    return status
