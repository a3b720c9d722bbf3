"""Binder: what can be verified without Docker.

* ``repo2docker --no-build --debug .`` plans the expected image: a conda env from
  ``binder/environment.yml`` (Python, Node.js), then ``binder/postBuild`` after the repository is
  copied in, and ``binder/start`` as the entrypoint.
* ``binder/postBuild`` then ``binder/start`` run on this machine in a temp HOME and a fresh venv
  (as the image would run them) and leave a working sandbox PDS with a demo account in the
  environment of the command that ``start`` execs; no password appears in their output.
* Launched again through ``binder/start``, ``notebooks/04-widgets-tour.ipynb`` (where the Binder
  badge lands) runs under nbval on that PDS with the exported demo account, wizard included.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
PASSWORD_SHAPE = re.compile(r"\b[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}\b")


def test_binder_files_say_what_the_image_needs():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    python = next(d for d in deps if d.startswith("python="))
    assert tuple(int(x) for x in python.split("=")[1].split(".")[:2]) >= (3, 11)
    node = next(d for d in deps if d.startswith("nodejs="))
    engines = json.loads((REPO / "atdata_lab" / "sandbox_js" / "package.json").read_text())["engines"]["node"]
    assert int(node.split("=")[1].split(".")[0]) >= int(engines.strip(">= ").split(".")[0]), (node, engines)
    assert "pip" in deps
    post = (BINDER / "postBuild").read_text()
    assert re.search(r'pip install .*-e "\.\[all\]"', post) and "ensure_installed" in post
    # the AppView postBuild installs needs PostgreSQL's initdb/postgres on PATH in the image
    assert "ensure_appview_installed" in post and any(d.split("=")[0] == "postgresql" for d in deps)
    start = (BINDER / "start").read_text()
    code = [ln for ln in start.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code[-1] == 'exec "$@"'
    assert "atdata-lab sandbox start" in start
    for f in ("postBuild", "start"):
        assert os.access(BINDER / f, os.X_OK), f"binder/{f} is not executable"
        assert (BINDER / f).read_text().startswith("#!/bin/bash\n")


def test_repo2docker_plans_the_expected_image():
    pytest.importorskip("repo2docker", reason="repo2docker is not installed: pip install jupyter-repo2docker")
    proc = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    python = yaml.safe_load((BINDER / "environment.yml").read_text())["dependencies"]
    version = next(d for d in python if isinstance(d, str) and d.startswith("python=")).split("=")[1]
    assert f"Building conda environment for python={version}" in out, out[-5000:]
    steps = [
        "COPY --chown=0:0 src/binder/environment.yml ${REPO_DIR}/binder/environment.yml",
        'env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"',
        "COPY --chown=0:0 src/ ${REPO_DIR}/",
        "RUN ./binder/postBuild",
        'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"',
    ]
    at = [out.find(s) for s in steps]
    assert all(i >= 0 for i in at), dict(zip(steps, at))
    assert at == sorted(at), f"steps out of order: {dict(zip(steps, at))}"


# ------------------------------------------------------------------------------------------------
# postBuild + start, for real
# ------------------------------------------------------------------------------------------------
CHECK_PDS = textwrap.dedent("""
    import json, os, sys
    import requests
    import atdata_lab
    from atdata_lab.atmosphere import Atmosphere

    url, handle = os.environ["ATDATA_PDS_URL"], os.environ["ATDATA_HANDLE"]
    health = requests.get(url + "/xrpc/_health", timeout=10).json()
    client = Atmosphere.login(handle, os.environ["ATDATA_PASSWORD"])  # pds_url from ATDATA_PDS_URL
    json.dump({"pds_url": url, "handle": handle, "did": client.did, "health": health,
               "atdata_lab": atdata_lab.__file__, "records": len(list(client.list_all_records("app.bsky.feed.post")))},
              open(sys.argv[1], "w"))
""")


def _isolated_venv(tmp_path: Path) -> Path:
    """A fresh venv that sees this venv's packages (through a folder of symlinks) except atdata-lab
    itself, so ``pip install -e .`` in postBuild resolves every dependency offline, installs only
    atdata-lab, and never touches this venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    ours = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "deps"
    deps.mkdir()
    for item in ours.iterdir():
        if "atdata_lab" in item.name or "atdata-lab" in item.name or item.suffix == ".pth":
            continue
        (deps / item.name).symlink_to(item)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "atdata-lab-test-deps.pth").write_text(str(deps) + "\n")
    return venv


@pytest.mark.slow
@pytest.mark.sandbox
def test_postbuild_then_start_leave_a_working_pds(tmp_path):
    from atdata_lab.sandbox import cache_root, ensure_installed

    ensure_installed(progress=False)  # the shared install cache, so this test does not spend 2 min in npm
    venv = _isolated_venv(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    run_dir = tmp_path / "sandbox-run"
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "ATDATA_LAB_CACHE": str(cache_root().parent),
        "ATDATA_LAB_SANDBOX_RUN_DIR": str(run_dir),
        "ATDATA_HOME": str(tmp_path / "atdata-home"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
    }
    post = subprocess.run(
        [str(BINDER / "postBuild")], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert post.returncode == 0, (post.stdout + post.stderr)[-6000:]
    assert (venv / "bin" / "atdata-lab").exists(), "postBuild did not install the atdata-lab command"

    result = tmp_path / "pds.json"
    try:
        started = subprocess.run(
            [str(BINDER / "start"), "python", "-c", CHECK_PDS, str(result)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = started.stdout + started.stderr
        assert started.returncode == 0, output[-6000:]
        info = json.loads(result.read_text())
        assert info["handle"] == "alice.test" and info["did"].startswith("did:plc:")
        assert info["pds_url"].startswith("http://127.0.0.1:") and info["health"].get("version")
        assert info["atdata_lab"].startswith(str(REPO)), info  # the editable install from postBuild
        assert f"sandbox PDS at {info['pds_url']}; demo account alice.test" in output
        from atdata_lab.sandbox._appview_install import appview_python_or_reason

        if appview_python_or_reason()[0] is not None:  # installed (Python 3.12 here): the network runs too
            assert "atdata-lab: AppView at http://127.0.0.1:" in output, output[-3000:]
        assert not PASSWORD_SHAPE.search(output + post.stdout + post.stderr), "a password reached the logs"
        state = json.loads((run_dir / "state.json").read_text())
        assert state["pds_url"] == info["pds_url"]  # started detached: still running after start exec'd
        assert not PASSWORD_SHAPE.search(json.dumps(state))
        # a second launch in the same container (alice.test taken) gets another demo account, and the
        # notebook the Binder badge opens runs under it: no account needed, no second sandbox
        from tests.test_notebooks import NOTEBOOKS, kernel_env, reference_copy, run_nbval

        workdir = tmp_path / "nbval"
        workdir.mkdir()
        ref = reference_copy(NOTEBOOKS / "04-widgets-tour.ipynb", workdir)
        nb_env = kernel_env(tmp_path / "kernel-state", {**env, "ATDATA_TOUR_AUTOPILOT": "1"})
        for k in ("ATDATA_PDS_URL", "ATDATA_HANDLE", "ATDATA_PASSWORD"):
            nb_env.pop(k, None)
        run = run_nbval([ref], workdir, nb_env, python="python", prefix=(str(BINDER / "start"),))
        assert run.ok, run.report
        first = run.cell_text(ref.name, "Atmosphere.from_env()")
        assert re.fullmatch(rf"logged in as @demo\d{{6}}\.test on {re.escape(info['pds_url'])}\n", first), (
            first
        )
        assert "verified | all checks passed: True" in run.cell_text(ref.name, "ATDATA_TOUR_AUTOPILOT")
        assert not PASSWORD_SHAPE.search(run.text() + run.report)
    finally:
        subprocess.run(
            [str(venv / "bin" / "atdata-lab"), "sandbox", "stop", "--run-dir", str(run_dir)],
            env=env,
            capture_output=True,
            timeout=60,
        )
    status = subprocess.run(
        [str(venv / "bin" / "atdata-lab"), "sandbox", "status", "--run-dir", str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 3, status.stdout  # stopped
