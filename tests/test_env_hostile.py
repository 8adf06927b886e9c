"""The environment's variables, hostile: $KMNIST_DATA, $KMNIST_MIRROR, the proxies, the CA bundle.

Each odd value is one usage line (exit 2) before anything is created or
fetched, naming the variable and never its password; the runs that reach a
network reach only 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmnist.catalogue.manifest import MIRROR_ENV, mirrors_from
from kmnist.cli.download import main
from kmnist.downloader import transfer
from kmnist.errors import UsageError
from kmnist.storage.root import DATA_ENV, data_root

from .server import CERT

SECRET = "s3cret-pw"
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
CA = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (*PROXIES, *(p.upper() for p in PROXIES), *CA, DATA_ENV, MIRROR_ENV):
        monkeypatch.delenv(name, raising=False)
    transfer._origin_proxies.cache_clear()
    yield
    transfer._origin_proxies.cache_clear()


def run(tmp_path: Path, *more: str) -> list[str]:
    """A download of one split from a closed port on 127.0.0.1; the stderr lines (exit 2)."""
    root = tmp_path / "data"
    argv = ["-d", "kmnist", "-s", "test", "--dir", str(root), "-m", "http://127.0.0.1:9/"]
    status = main([*argv, "-q", "--timeout", "2", *more])
    return [str(status), *(() if root.exists() else ("nothing created",))]


def one_usage_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(tmp_path) == ["2", "nothing created"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert SECRET not in err
    return err


# --- proxies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # requests' own TypeError (a traceback) for a URL with userinfo and no host.
        (f"http://user:{SECRET}@", "$http_proxy is 'http://***@', which is not a proxy URL"),
        # Without a scheme the password was printed in clear.
        (f"user:{SECRET}@127.0.0.1:3128", "$http_proxy is '***@127.0.0.1:3128'"),
        # A line per file, "Proxy URL had unsupported scheme ftp", exit 1.
        ("ftp://127.0.0.1:21", "its scheme is ftp://, where a proxy's is http, https or socks"),
        ("gopher://127.0.0.1", "its scheme is gopher://"),
        # Port 0 went to port 80.
        (f"http://user:{SECRET}@127.0.0.1:0", "port 0 is no port"),
        # Two proxies in one variable: the host "a,http" failed per file.
        ("http://proxy-a,http://proxy-b", "the host 'proxy-a,http' is not a host name"),
        # "an address it answered with cannot be used (... label too long)", per file.
        ("x" * 100_000, "(100,000 characters), which is not a proxy URL (the host 'xxx"),
        ("http://" + "a" * 64 + ".example", "is not a host name"),
    ],
)
def test_a_proxy_variable_no_request_can_use_is_one_usage_line(
    value: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("http_proxy", value)
    err = one_usage_line(tmp_path, capsys)
    assert said in err and len(err) < 400


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:3128",
        "http://[::1]:3128",
        "http://[fe80::1%eth0]:3128",
        f"socks5h://user:{SECRET}@proxy_1.internal:1080",
        "http://例え.jp:8080",
    ],
)
def test_proxies_requests_takes_are_still_taken(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    transfer.check_network_environment()


# --- CA bundle ----------------------------------------------------------------------------


def ca_error(monkeypatch: pytest.MonkeyPatch, value: str, name: str = CA[0]) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        transfer.check_network_environment()
    return str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_ca_bundle_that_is_a_fifo_is_refused_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first TLS handshake opened it and waited for a writer forever;
    # SIGTERM did not end the run.
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    said = ca_error(monkeypatch, str(fifo), "CURL_CA_BUNDLE")
    assert "$CURL_CA_BUNDLE names" in said and "which is a pipe, not a file of certificates" in said


@pytest.mark.parametrize("content", [b"", b"not a certificate\n", b"\x00" * 4096])
def test_a_ca_bundle_without_a_certificate_is_refused(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every handshake failed ("TLS ... failed (SSLError)") and the hint said
    # no mirror could be reached.
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    assert "which holds no certificate (PEM)" in ca_error(monkeypatch, str(bundle))


def test_a_ca_folder_without_hashed_names_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL looks certificates up by subject hash: cert.pem in a folder is
    # never found, and the error then said to set $REQUESTS_CA_BUNDLE.
    folder = tmp_path / "certs"
    folder.mkdir()
    shutil.copy(CERT, folder / "cert.pem")
    assert "openssl rehash" in ca_error(monkeypatch, str(folder))
    # Once rehashed (the hash of tests/tls/cert.pem), it is taken.
    openssl = shutil.which("openssl")
    if openssl is not None:
        out = subprocess.run(
            [openssl, "x509", "-hash", "-noout", "-in", str(CERT)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        (folder / f"{out.stdout.strip()}.0").write_bytes(CERT.read_bytes())
        transfer.check_network_environment()


def test_a_ca_bundle_with_a_tilde_says_nothing_expands_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(CERT, tmp_path / "ca.pem")
    said = ca_error(monkeypatch, "~/ca.pem")
    assert f"nothing expands its ~ here: write {str(tmp_path / 'ca.pem')!r}" in said


def test_a_ca_bundle_name_of_100_kb_is_not_printed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    said = ca_error(monkeypatch, "/" + "x" * 100_000)
    assert said.startswith("$REQUESTS_CA_BUNDLE is 100,001 bytes long") and len(said) < 200


def test_good_ca_bundles_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CERT))
    assert transfer.ca_bundle() == str(CERT)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")  # empty: the next variable, as requests reads it
    monkeypatch.setenv("CURL_CA_BUNDLE", str(CERT))
    assert transfer.ca_bundle() == str(CERT)


# --- $KMNIST_DATA --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # A folder named "~nosuchuser" was made in the working folder.
        ("~nosuchuser-kmnist/data", "no user 'nosuchuser-kmnist' here, so its ~ names nothing"),
        # A folder "file:" was made in the working folder.
        ("file:///srv/kmnist", "is a URL: the data folder is a folder on this machine"),
        ("https://example.org/kmnist", "(a mirror to download from goes in $KMNIST_MIRROR)"),
    ],
)
def test_a_data_variable_that_names_no_folder_is_one_usage_line(
    value: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, value)
    assert main(["-d", "kmnist", "-s", "test", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"$KMNIST_DATA {value!r}" in err and said in err
    assert list(tmp_path.iterdir()) == []
    # --dir is what is used when given: the variable is not looked at.
    assert main(["-d", "kmnist", "-s", "test", "--dry-run", "--dir", "d"]) == 0


@pytest.mark.parametrize("below", ["", "sub/data"])
def test_a_data_variable_at_a_file_names_the_variable_not_dir(
    below: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "--dir <path> is a file", a flag the user had not given.
    file = tmp_path / "afile"
    file.write_text("x")
    value = str(file / below) if below else str(file)
    monkeypatch.setenv(DATA_ENV, value)
    assert main(["-d", "kmnist", "-s", "test", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"$KMNIST_DATA {value!r}" in err and "--dir" not in err
    assert "a file, not a folder" in err
    with pytest.raises(UsageError, match=r"\$KMNIST_DATA"):
        data_root()


# --- $KMNIST_MIRROR and --mirror -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # Printed the password: "not a valid URL (Port out of range 0-65535)".
        (f"http://user:{SECRET}@127.0.0.1:99999/", "'http://***@127.0.0.1:99999/'"),
        (f"https://user:{SECRET}@127.0.0.1:9/{{bad}}", "'https://***@127.0.0.1:9/{bad}'"),
        # Port 0 went to port 80: "connection to 127.0.0.1:80 refused (where 127.0.0.1:0 sent us)".
        (f"http://user:{SECRET}@127.0.0.1:0/", "port 0 is no port"),
        # Mirrors joined by another separator were one mirror, failed per file.
        ("http://127.0.0.1:9/,http://127.0.0.1:10/", "separate mirrors with spaces, not ','"),
        ("/srv/a;/srv/b", "separate mirrors with spaces, not ';'"),
        ("/srv/a:/srv/b", "separate mirrors with spaces, not ':'"),
        # A folder named "~nosuchuser-kmnist" below the working folder.
        ("~nosuchuser-kmnist/copy", "no user 'nosuchuser-kmnist' here"),
        # Accepted, then "label too long" per file.
        ("http://" + "x" * 100_000 + "/", "...' is not a host name"),
    ],
)
def test_a_mirror_variable_no_request_can_use_is_one_usage_line(
    value: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(MIRROR_ENV, value)
    root = tmp_path / "data"
    assert main(["-d", "kmnist", "-s", "test", "--dir", str(root), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kmnist-download: error: $KMNIST_MIRROR ")
    assert said in err and SECRET not in err and len(err) < 400
    assert not root.exists()


def test_the_mirror_flag_hides_the_password_and_refuses_a_list_too() -> None:
    with pytest.raises(UsageError) as caught:
        mirrors_from([f"http://u:{SECRET}@127.0.0.1:99999/"])
    assert SECRET not in str(caught.value) and "--mirror 'http://***@" in str(caught.value)
    with pytest.raises(UsageError, match="give --mirror once per mirror, not ','"):
        mirrors_from(["http://127.0.0.1:9/,http://127.0.0.1:10/"])


def test_mirror_lists_that_work_still_work(tmp_path: Path) -> None:
    (tmp_path / "a,b").mkdir()  # a folder whose name has a comma is still that folder
    env = {
        MIRROR_ENV: f"  http://[::1]:9/ {tmp_path / 'a,b'}  {tmp_path / 'a,b'}/ "
        "http://a_b.internal:8080/k http://127.0.0.1:9/x,y "
    }
    names = [m.name for m in mirrors_from(None, env)]
    assert names == [
        "http://[::1]:9/",
        str(tmp_path / "a,b"),
        "http://a_b.internal:8080/k",
        "http://127.0.0.1:9/x,y",
    ]


# --- the working folder -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        ((), {}, "the default data folder 'data' is inside the working folder"),
        (("--dir", "rel"), {}, "--dir 'rel' is inside the working folder"),
        ((), {DATA_ENV: "mine"}, "$KMNIST_DATA 'mine' is inside the working folder"),
    ],
)
def test_a_relative_data_folder_in_a_deleted_working_folder_is_one_usage_line(
    tmp_path: Path, argv: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    # A shell left in a folder that was deleted: each file said `data: No such
    # file or directory` (three lines, exit 1); kmnist.load called them missing.
    script = shutil.which("kmnist-download")
    assert script is not None
    command = " ".join(
        [script, "-d", "kmnist", "-s", "test", "-m", "http://127.0.0.1:9/", "-q", *argv]
    )
    r = subprocess.run(
        ["sh", "-c", f"mkdir gone && cd gone && rmdir ../gone && exec {command}"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and said in r.stderr, r.stderr
    assert "no longer exists" in r.stderr and "full path" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    lib = subprocess.run(
        ["sh", "-c", "mkdir gone && cd gone && rmdir ../gone && exec \"$0\" -c \"$1\"",
         sys.executable, "import kmnist; kmnist.load('kmnist', 'test')"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    if not argv:  # the library has no --dir: root=None is the default or $KMNIST_DATA
        assert "UsageError: " in lib.stderr and said in lib.stderr, lib.stderr
