"""pytest fixtures: a real JupyterLab server driven by a real headless Chromium (Playwright).

Fixtures (all lazy: nothing starts unless a test asks for it):

* ``jupyter_lab`` (session): a factory ``jupyter_lab(env=None) -> JupyterLabServer``. Each distinct
  ``env`` gets its own server (started once, reused, stopped at session end); kernels inherit it.
* ``jupyter_server`` (session): the default server, ``jupyter_lab()``.
* ``browser`` (session): a Playwright ``Browser`` on Debian's ``/usr/bin/chromium``.
* ``page`` (function): a fresh browser context + page (60 s default timeouts). When the test fails, a
  screenshot, the page HTML, the browser console and the server log tail are saved under the test's
  ``tmp_path/artifacts`` and ``test-artifacts/<test name>/`` in the repo (git-ignored).
* ``lab`` (function): a :class:`tests.support.notebook_ui.LabPage` on ``page`` + ``jupyter_server``;
  its notebooks live in a per-test folder of the server root; its kernels are shut down afterwards.

Kernel environment: kernels run this venv's python (``sys.executable``) with the repo root on
``PYTHONPATH``. Every ``ATDATA_*`` variable set in the test process when a notebook is opened (e.g. the
per-test ``ATDATA_HOME``, or ``ATDATA_PDS_URL`` set with monkeypatch) is passed to that notebook's
kernel, plus any ``env=`` given to ``LabPage.open_notebook`` (written into the server's kernelspec,
which the server re-reads at every kernel start). Precedence, lowest first: the server's own env
(``jupyter_lab(env=...)``), the test's ``ATDATA_*`` variables, ``open_notebook(env=...)``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("ATDATA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
WAIT_S = 60.0
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (ipykernel)"

# JupyterLab user settings: no news popup, no update check, no autosave (tests save explicitly),
# every cell kept in the DOM, and the default kernel started without a selection dialog.
USER_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}

# Environment variables of the test process that never reach the server (they describe pytest itself
# or point Jupyter at the developer's real directories).
_DROPPED_ENV_PREFIXES = ("PYTEST_", "JUPYTER_", "JPY_")

_STARTUP_TIMES: list[tuple[str, float]] = []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slug(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:limit] or "test"


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) for every process (read from /proc; empty without it)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), fields[19])
        except (OSError, IndexError, ValueError):
            continue
    return table


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every live descendant of ``pid``."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _start) in table.items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append((child, table[child][1]))
            todo.append(child)
    return out


class JupyterLabServer:
    """One real JupyterLab server process on 127.0.0.1, with its own temp dirs and token."""

    def __init__(self, base_dir: Path, env: Mapping[str, str] | None = None, python: str = sys.executable):
        self.base_dir = Path(base_dir)
        self.python = python
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        self.token = secrets.token_hex(16)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self.root_dir = self.base_dir / "root"
        self.runtime_dir = self.base_dir / "runtime"
        self.settings_dir = self.base_dir / "user-settings"
        self.workspaces_dir = self.base_dir / "workspaces"
        self.home_dir = self.base_dir / "home"
        self.jupyter_path = self.base_dir / "jupyter-path"
        self.kernel_dir = self.jupyter_path / "kernels" / KERNEL_NAME
        self.log_path = self.base_dir / "server.log"

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare_dirs(self) -> None:
        for d in (self.root_dir, self.runtime_dir, self.settings_dir, self.workspaces_dir, self.home_dir):
            d.mkdir(parents=True, exist_ok=True)
        for rel, values in USER_SETTINGS.items():
            f = self.settings_dir / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values, indent=2))
        self.set_kernel_env({})

    def server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
        venv_bin = str(Path(self.python).parent)
        pythonpath = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(
            HOME=str(self.home_dir),
            IPYTHONDIR=str(self.home_dir / ".ipython"),
            MPLCONFIGDIR=str(self.home_dir / ".matplotlib"),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_CONFIG_DIR=str(self.home_dir / ".jupyter"),
            JUPYTER_DATA_DIR=str(self.home_dir / ".local" / "share" / "jupyter"),
            JUPYTER_PATH=str(self.jupyter_path),
            JUPYTER_PLATFORM_DIRS="1",
            PATH=venv_bin + os.pathsep + env.get("PATH", ""),
            PYTHONPATH=os.pathsep.join(pythonpath),
            PYTHONUNBUFFERED="1",
            # A server-level default; each notebook's kernel gets the test's own ATDATA_HOME instead.
            ATDATA_HOME=str(self.base_dir / "atdata-home"),
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            # Safety net: a server orphaned by a killed pytest exits by itself after 30 idle minutes.
            "--ServerApp.shutdown_no_activity_timeout=1800",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={self.settings_dir}",
            f"--LabApp.workspaces_dir={self.workspaces_dir}",
        ]

    def start(self, timeout: float = WAIT_S) -> JupyterLabServer:
        self._prepare_dirs()
        t0 = time.monotonic()
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding: retry
            self.port = _free_port()
            log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.root_dir,
                env=self.server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one at teardown
            )
            log.close()
            try:
                self._wait_ready(t0 + timeout)
                self.startup_s = time.monotonic() - t0
                return self
            except _ServerExited as exc:
                last_error = str(exc)
                if "address already in use" not in last_error.lower():
                    break
        raise RuntimeError(f"JupyterLab did not start: {last_error}\n--- server log ---\n{self.log_tail()}")

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise _ServerExited(f"exited with code {self.proc.returncode}: {self.log_tail(30)}")
            try:
                status = self.api("GET", "/api/status", timeout=5)
                if isinstance(status, dict):
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab not ready after {WAIT_S:.0f} s\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        kids = _descendants(proc.pid)
        try:
            self.api("POST", "/api/shutdown", timeout=5)
            proc.wait(timeout=15)
        except Exception:
            pass
        for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass
        # Kernels run in their own process groups: end any this server left behind, by pid (only
        # while the pid still names the same process: same start time).
        table = _proc_table()
        for pid, start in kids:
            if table.get(pid, (None, None))[1] == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    # -- REST --------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """Call the server's REST API with the token; returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def lab_url(self, path: str = "", workspace: str | None = None) -> str:
        """URL opening ``path`` (relative to the root) in JupyterLab, in an optional fresh workspace."""
        ws = f"/workspaces/{workspace}" if workspace else ""
        tree = "/tree/" + urllib.request.quote(path.strip("/")) if path else ""
        return f"{self.url}/lab{ws}{tree}?token={self.token}"

    def sessions(self) -> list[dict]:
        return self.api("GET", "/api/sessions") or []

    def session_for(self, path: str) -> dict | None:
        path = path.strip("/")
        return next((s for s in self.sessions() if s.get("path", "").strip("/") == path), None)

    def connection_file(self, kernel_id: str) -> Path:
        f = self.runtime_dir / f"kernel-{kernel_id}.json"
        if f.exists():
            return f
        found = sorted(self.runtime_dir.glob(f"*{kernel_id}*.json"))
        if not found:
            raise FileNotFoundError(f"no connection file for kernel {kernel_id} in {self.runtime_dir}")
        return found[0]

    def shutdown_kernels(self) -> None:
        """Delete every session and kernel (frees the 2 cores between tests)."""
        for s in self.sessions():
            try:
                self.api("DELETE", f"/api/sessions/{s['id']}")
            except urllib.error.HTTPError:
                pass
        for k in self.api("GET", "/api/kernels") or []:
            try:
                self.api("DELETE", f"/api/kernels/{k['id']}")
            except urllib.error.HTTPError:
                pass

    # -- kernels -----------------------------------------------------------------------------------
    def set_kernel_env(self, env: Mapping[str, str]) -> None:
        """(Re)write the ``python3`` kernelspec: this venv's python, plus ``env`` for kernels started
        from now on (the server reads the kernelspec at every kernel start)."""
        self.kernel_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_DISPLAY_NAME,
            "language": "python",
            "metadata": {"debugger": True},
            "env": {k: str(v) for k, v in env.items()},
        }
        tmp = self.kernel_dir / "kernel.json.tmp"
        tmp.write_text(json.dumps(spec, indent=1))
        tmp.replace(self.kernel_dir / "kernel.json")

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class _ServerExited(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------
# Server fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory) -> Iterator[Callable[..., JupyterLabServer]]:
    """Factory: ``jupyter_lab(env=None) -> JupyterLabServer``; one server per distinct ``env``."""
    servers: dict[tuple, JupyterLabServer] = {}

    def start(env: Mapping[str, str] | None = None) -> JupyterLabServer:
        key = tuple(sorted((env or {}).items()))
        server = servers.get(key)
        if server is None or server.proc is None or server.proc.poll() is not None:
            base = tmp_path_factory.mktemp("jupyter")
            server = JupyterLabServer(base, env=env).start()
            _STARTUP_TIMES.append((str(base), server.startup_s or 0.0))
            servers[key] = server
        return server

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def jupyter_server(jupyter_lab) -> JupyterLabServer:
    """The session's default JupyterLab server (started on first use)."""
    return jupyter_lab()


# ------------------------------------------------------------------------------------------------
# Browser fixtures
# ------------------------------------------------------------------------------------------------
def _ensure_chromium() -> str | None:
    """Return a reason to skip, or None when Chromium is there (installing it when missing)."""
    if not Path(CHROMIUM).exists():
        script = REPO_ROOT / "scripts" / "install-system-deps.sh"
        if script.exists() and shutil.which("apt-get"):
            subprocess.run(["bash", str(script)], check=False, timeout=900)
    if not Path(CHROMIUM).exists():
        return (
            f"Chromium is not installed at {CHROMIUM} and could not be installed (apt-get install chromium)"
        )
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright's sync API (never a downloaded browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright)"
    else:
        reason = _ensure_chromium()
    if reason:
        if os.environ.get("ATDATA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh context and page; the console is recorded in ``page.atdata_console``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_S * 1000)
    context.set_default_navigation_timeout(WAIT_S * 1000)
    p = context.new_page()
    console: list[str] = []
    p.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    p.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    p.atdata_console = console
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def lab(page, jupyter_server, request):
    """A :class:`LabPage` whose notebooks go to a per-test folder; kernels are shut down after."""
    from tests.support.notebook_ui import LabPage

    lab_page = LabPage(page, jupyter_server, subdir=_slug(request.node.name, 60))
    try:
        yield lab_page
    finally:
        try:
            jupyter_server.shutdown_kernels()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------------
# Failure artifacts
# ------------------------------------------------------------------------------------------------
def _is_playwright_page(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "Page" and cls.__module__.startswith("playwright.")


def _pages_of(item: pytest.Item) -> list[Any]:
    """Playwright pages among the test's fixture values (a page, or an object holding ``.page``)."""
    pages: list[Any] = []
    for value in (getattr(item, "funcargs", None) or {}).values():
        held = getattr(value, "__dict__", {}).get("page") if not _is_playwright_page(value) else value
        if _is_playwright_page(held) and all(held is not p for p in pages):
            pages.append(held)
    return pages


def _save_artifacts(item: pytest.Item, when: str) -> list[Path]:
    pages = _pages_of(item)
    if not pages:
        return []
    funcargs = getattr(item, "funcargs", {}) or {}
    dirs = [ARTIFACTS_DIR / _slug(item.nodeid.split("::", 1)[-1], 120)]
    tmp_path = funcargs.get("tmp_path")
    if isinstance(tmp_path, Path):
        dirs.append(tmp_path / "artifacts")
    server = funcargs.get("jupyter_server")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(pages):
        stem = f"{when}-failure" + (f"-{i}" if i else "")
        try:
            png = p.screenshot(full_page=True, timeout=15_000)
            html = p.content()
        except Exception as exc:  # the page may be gone already
            png, html = None, f"<!-- could not capture page: {exc} -->"
        console = "\n".join(getattr(p, "atdata_console", []))
        for d in dirs:
            if png:
                (d / f"{stem}.png").write_bytes(png)
            (d / f"{stem}.html").write_text(html)
            (d / f"{stem}-console.log").write_text(console)
            if server is not None:
                (d / f"{stem}-server.log").write_text(server.log_tail(400))
    return dirs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        try:
            dirs = _save_artifacts(item, report.when)
        except Exception as exc:  # never hide the real failure
            dirs = []
            report.sections.append(("browser artifacts", f"could not save: {exc!r}"))
        if dirs:
            report.sections.append(("browser artifacts", "\n".join(str(d) for d in dirs)))


def pytest_terminal_summary(terminalreporter):
    for base, secs in _STARTUP_TIMES:
        terminalreporter.write_line(f"jupyter: JupyterLab server in {base} ready in {secs:.1f} s")
