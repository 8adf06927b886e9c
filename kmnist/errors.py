"""The exception tree, and the one place that maps exceptions to exit codes."""

from __future__ import annotations

import enum
import errno


class ExitStatus(enum.IntEnum):
    """Exit codes of ``kmnist-download`` (and ``download_data.py``)."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # argparse uses 2 for its own errors; ours match it
    INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
    HANGUP = 129  # 128 + SIGHUP: the terminal went away
    TERMINATED = 143  # 128 + SIGTERM: kill, a batch scheduler's time limit


class KmnistError(Exception):
    """Base of every error this package raises on purpose.

    Catch it to handle any expected failure; a bug still shows its own
    exception. Its message is one line that says what happened, to which
    file, and what to do next.

    Attributes:
        exit_status: what ``kmnist-download`` exits with for it (1, or 2 for
            a [UsageError][kmnist.errors.UsageError]).

    Examples:
        >>> try:
        ...     kmnist.load("mnist", "test")
        ... except kmnist.KmnistError as e:
        ...     print(type(e).__name__, int(e.exit_status))
        UnknownDataset 2
    """

    exit_status = ExitStatus.FAILURE
    # Files of the same run that were fetched and verified all the same (a
    # failed file does not stop the others), so that they can be reported.
    completed: tuple[object, ...] = ()
    # The mirrors a failed run had (so that its hint suggests none of them).
    mirrors: tuple[object, ...] = ()

    def __str__(self) -> str:
        # The one line promised above, for library callers too (the commands
        # escape what they print): a path or a server's text in the message
        # may hold a newline, and split a log line or a notebook's message.
        return one_line(super().__str__())


class UsageError(KmnistError):
    """The request itself is wrong: nothing was fetched."""

    exit_status = ExitStatus.USAGE


class UnknownDataset(UsageError):
    """A dataset name that the manifest does not know."""


class UnsupportedFormat(UsageError):
    """A format (or split) that the chosen dataset does not have."""


class Refusal:
    """Why one mirror did not give one file, in plain words.

    ``down``: no connection could be made; the reason belongs to the mirror,
    and is said once for every file it would have served. A plain class, not
    a dataclass: this module is on the path of ``--help``, and dataclasses
    imports inspect.
    """

    __slots__ = ("down", "mirror", "reason")

    def __init__(self, mirror: str, reason: str, *, down: bool = False) -> None:
        self.mirror = mirror
        self.reason = reason
        self.down = down

    def __repr__(self) -> str:
        return f"Refusal({self.mirror!r}, {self.reason!r}, down={self.down})"


class DownloadError(KmnistError):
    """A file could not be fetched from any mirror.

    Attributes:
        path: the file's path below the data folder.
        reasons: what each mirror answered, one line each.
        unreachable: no mirror could even be connected to: the network, not
            the mirrors.
    """

    whole_mirror = False  # True: a mirror found down, not a file (said once, first)

    def __init__(
        self,
        path: str,
        reasons: list[str],
        *,
        unreachable: bool = False,
        refusals: tuple[Refusal, ...] = (),
    ) -> None:
        self.path = path
        self.reasons = reasons
        # Each mirror's answer, for the renderer (kmnist.cli.failures).
        self.refusals = refusals
        # No mirror could even be connected to: the network, not the mirrors.
        self.unreachable = unreachable
        # Set when building the file from another format was tried and failed too.
        self.not_built: KmnistError | None = None
        tried = "; ".join(reasons) if reasons else "no mirror carries it"
        super().__init__(f"{path}: could not be fetched ({tried})")


class VerificationError(KmnistError):
    """Bytes that are not the published ones (wrong size, hash or structure).

    Attributes:
        path: the file.
        source: the mirror (or ``disk``) the bytes came from.
        what: what was wrong: ``size``, ``sha256``, ``md5`` or ``structure``.
        expected: the published figure.
        got: what the bytes gave.
    """

    def __init__(self, path: str, source: str, what: str, expected: str, got: str) -> None:
        self.path = path
        self.source = source
        self.what = what
        self.expected = expected
        self.got = got
        super().__init__(f"{path} from {source}: wrong {what}: expected {expected}, got {got}")


class NotEnoughSpace(KmnistError):
    """The destination cannot hold what is about to be written."""


class DiskFull(NotEnoughSpace):
    """The disk filled up (ENOSPC) or a quota was reached (EDQUOT) while a file was written.

    Whatever was being written (a ``.part``, its range record, a built file):
    one error naming the file and the free space it still needs.
    """

    def __init__(
        self,
        path: str,
        needed: int | None,
        free: int | None,
        why: str,
        *,
        remedy: str = "free some space",
    ) -> None:
        self._set(path, needed, free)
        super().__init__(
            f"{path}: {why} while writing it ({self.figures()}); {remedy} or choose "
            "another folder with --dir, then run again to resume"
        )

    def _set(self, path: str, needed: int | None, free: int | None) -> None:
        self.path = path
        self.needed = needed
        self.free = free

    def figures(self) -> str:
        """``1.2 MiB more needed, 3.4 MiB free``: what the message says of the space."""
        more = f"{_mib(self.needed)} more needed, " if self.needed else ""
        left = f"{_mib(self.free)} free" if self.free is not None else "free space unknown"
        return more + left


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


class UnsafePath(KmnistError):
    """A link (or other non-file) where kmnist keeps its own files: never written through."""


class FolderError(KmnistError):
    """A data folder that cannot be used (read-only, not a folder, no storage behind it)."""


class LocalFileError(KmnistError):
    """One file cannot be written or read in the data folder (a folder where its
    lock goes, an immutable ``.part``): that file fails, the other files go on."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: {reason}")


def unreadable(path: object, exc: OSError) -> LocalFileError:
    """A file of the data folder that the system will not let this user read.

    Said as such: a PermissionError from ``kmnist.load`` was a traceback, and
    with ``verify=False`` a "wrong structure" of the file (the command then
    advised write access to it).
    """
    why = (exc.strerror or type(exc).__name__).lower()
    if exc.errno in (errno.EACCES, errno.EPERM):
        todo = "make it readable by this user, or delete it and download it again"
    else:
        todo = "check the disk it is on, or delete it and download it again"
    return LocalFileError(str(path), f"cannot be read ({why}): {todo}")


class DownloadsFailed(KmnistError):
    """Some files of a run failed; the others were fetched and verified."""

    def __init__(self, failures: list[KmnistError]) -> None:
        self.failures = failures
        super().__init__("; ".join(str(f) for f in failures))


class NotDownloaded(KmnistError):
    """The files a loader needs are not in the folder (and ``download`` was off)."""


class DatasetNotFound(NotDownloaded, RuntimeError):
    """The files are not in ``root`` and ``download`` was off.

    A ``RuntimeError`` with torchvision's message, for code written against
    torchvision, and a [NotDownloaded][kmnist.errors.NotDownloaded] for code
    written against this package.
    """


class MissingDependency(KmnistError):
    """An optional package that a feature needs is not installed."""


# A refusal lists this many members, then a count: a hostile archive can hold
# thousands of bad members, and the first few say enough.
UNSAFE_EXAMPLES = 5


class UnsafeArchive(KmnistError):
    """An archive member that would escape the target or is not a plain file or folder."""

    def __init__(self, archive: str, problems: list[str]) -> None:
        self.archive = archive
        self.problems = problems
        shown = "; ".join(problems[:UNSAFE_EXAMPLES])
        more = (
            f" (and {len(problems) - UNSAFE_EXAMPLES} more)"
            if len(problems) > UNSAFE_EXAMPLES
            else ""
        )
        super().__init__(f"{archive}: refused to unpack, nothing written: {shown}{more}")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into the same orderly stop as Ctrl-C (see kmnist.signals)."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name


def one_line(text: str) -> str:
    """``text`` as one line on any terminal: control characters escaped.

    A message may carry what a user or a server typed (a folder named with a
    newline, an escape sequence in a file name): printed raw, it split the
    one-line error in two or drove the terminal. Printable text, Japanese
    included, is left as it is.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else escaped(c) for c in text)


def escaped(c: str) -> str:
    """One character a terminal cannot show, as the escape a shell's ``$'...'`` reads back.

    A byte that is not UTF-8 in a file name (os.fsdecode keeps it as a lone
    surrogate) is ``\\xff``, the byte itself: it was ``\\udcff``, which names
    no file. Other characters above ASCII are ``\\u0085``, never ``\\x85``,
    which would be that byte.
    """
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return c.encode("unicode_escape").decode("ascii")  # \n, \t, \x1b
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def exit_status(exc: BaseException) -> ExitStatus:
    """The exit code for an exception that ended a run."""
    if isinstance(exc, Stopped):
        return ExitStatus(128 + exc.signum)
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    if isinstance(exc, KmnistError):
        return exc.exit_status
    return ExitStatus.FAILURE


class StoppedAtQuestion(KeyboardInterrupt):
    """Ctrl-C (or Ctrl-D) at a question of the interactive flow: nothing had started."""
