"""Repository credentials never show: not in logs (a re-clone logged the `--repo` URL with its token), not in
/status, not in the clone's config; and they still work, from the URL, a file or the environment (issue 13).

The remote is a real one: the bare repository served over git's "dumb" HTTP protocol (static files) by a local
server that wants HTTP Basic authentication, as an https remote with a token does.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_repos import Remote, run_git

from reconciler.git import auth
from reconciler.git.source import GitSource, SourceConfig, SourceError
from reconciler.ops.status import SourceErrorKind, Status

TOKEN = "tok-9f8e7d6c5b4a"
USER = "deploy"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(remote: Remote) -> Iterator[str]:
    """The URL of `remote.bare` over authenticated HTTP (refresh with `_publish` after each commit)."""
    handler = functools.partial(_Handler, directory=str(remote.bare.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{remote.bare.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _publish(remote: Remote) -> str:
    sha = remote.commit({"mesh.yaml": "v1\n"})
    run_git(remote.bare, "update-server-info")  # what the dumb protocol reads instead of asking git
    return sha


def _with_token(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{TOKEN}@")


def _everything_shown(source: GitSource, caplog: pytest.LogCaptureFixture, status: Status | None = None) -> str:
    config = (source.config.workdir / "mirror.git" / "config")
    return caplog.text + (config.read_text() if config.exists() else "") + json.dumps(
        status.to_json() if status else {})


def test_a_token_in_the_url_is_used_and_never_shown(remote: Remote, served: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sha = _publish(remote)
    source = GitSource(SourceConfig(url=_with_token(served), workdir=tmp_path / "work"))
    fetched = source.poll()
    assert fetched is not None and fetched.commit.sha == sha
    (tmp_path / "work" / "mirror.git" / "config").write_text("[broken\n")  # re-cloned, logged with the URL
    _publish(remote)
    assert source.poll() is not None
    assert TOKEN not in _everything_shown(source, caplog)
    assert "re-cloning http://127.0.0.1" in caplog.text


@pytest.mark.parametrize("how", ["file", "env"])
def test_credentials_from_a_file_or_the_environment(remote: Remote, served: str, tmp_path: Path, how: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(remote)
    credentials = None
    if how == "file":
        (tmp_path / "creds").write_text(f"{USER}:{TOKEN}\n")
        credentials = auth.from_file(tmp_path / "creds")
    else:
        monkeypatch.setenv(auth.USERNAME_ENV, USER)
        monkeypatch.setenv(auth.PASSWORD_ENV, TOKEN)
        credentials = auth.from_env()
    assert GitSource(SourceConfig(url=served, workdir=tmp_path / "work", credentials=credentials)).poll() is not None


def test_refused_credentials_are_a_source_error_that_shows_no_token(remote: Remote, served: str, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _publish(remote)
    source = GitSource(SourceConfig(url=_with_token(served).replace(TOKEN, TOKEN + "-old"), workdir=tmp_path / "w"))
    with pytest.raises(SourceError) as raised:
        source.poll()
    assert raised.value.kind is SourceErrorKind.UNREACHABLE
    status = Status().source_failed(raised.value.kind, raised.value.message)
    assert TOKEN not in _everything_shown(source, caplog, status) + str(raised.value)


def test_redact_hides_the_userinfo_of_every_url() -> None:
    text = f"fatal: unable to access 'https://{USER}:{TOKEN}@git.example.com/r.git/': 403; ssh://git@h/r"
    assert auth.redact(text) == "fatal: unable to access 'https://***@git.example.com/r.git/': 403; ssh://***@h/r"
