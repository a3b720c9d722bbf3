"""The ``atdata-lab`` command line on real data: datasets written by the library into the test's
own ATDATA_HOME and tmp_path, the real sandbox PDS for published datasets and ``diagnose``, the
real redis-server for a Redis index. Commands run in-process through ``main([...])``, and through
the console script and ``python -m atdata_lab.cli`` in a subprocess.

(``sandbox start|status|stop`` are tested in tests/test_sandbox.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.cli import main
from atdata_lab.views import human_bytes

REPO = Path(__file__).resolve().parents[1]


@atdata.packable
class Img:
    image: NDArray
    label: int
    caption: str


def images(n: int, seed: int = 0) -> list[Img]:
    rng = np.random.default_rng(seed)
    return [
        Img(image=rng.standard_normal((64, 64)).astype(np.float32), label=i, caption=f"cap {i}")
        for i in range(n)
    ]


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def kv(out: str) -> dict[str, str]:
    """The ``Label:  value`` lines of an output."""
    return dict(re.findall(r"^(\w[\w ]*):[ ]*(.*)$", out, re.M))


def run_process(*args: str, script: list[str] | None = None, env: dict | None = None):
    command = script or [sys.executable, "-m", "atdata_lab.cli"]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture
def indexed():
    """20 samples in 2 shards as ``@local/imgs`` of the default index (this test's ATDATA_HOME)."""
    index = atdata.Index()
    index.write(images(20), name="imgs", maxcount=10, progress=False)
    return index


@pytest.fixture
def shard_files(tmp_path):
    """7 samples in 2 plain shard files, no index: ``tmp_path/files/data-00000{0,1}.tar``."""
    atdata.write_samples(images(7, seed=1), tmp_path / "files" / "data", maxcount=4)
    return tmp_path / "files"


# ---------------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------------
def test_inspect_an_entry_of_the_index(capsys, indexed):
    rc, out, err = run(capsys, "inspect", "@local/imgs")
    assert rc == 0 and err == ""
    fields = kv(out)
    assert fields["Name"] == "imgs"
    assert fields["Sample type"] == "Img@1.0.0"
    assert fields["Schema"] == "atdata://local/schema/Img@1.0.0"
    assert fields["Samples"] == "20" and fields["Shards"] == "2"
    entry = indexed.get_entry_by_name("imgs")
    assert fields["Size"] == human_bytes(entry.size_bytes)
    assert fields["Checksums"] == "sha256 for 2 of 2 shards"
    assert fields["Published"] == "not published" and fields["CID"] == entry.cid
    assert "Shards (2)" in out
    for url, checksum in zip(entry.data_urls, entry.shard_checksums):
        row = next(line for line in out.splitlines() if url in line)
        assert checksum[:16] in row and "10" in row.split()
    rc, short, _ = run(capsys, "inspect", "@local/imgs", "--shards", "1")
    assert (
        rc == 0 and "Shards (2)" in short and entry.data_urls[0] in short and entry.data_urls[1] not in short
    )
    assert short.rstrip().endswith("… and 1 more")
    # the same through --index, given as the file and as its folder
    home = Path(os.environ["ATDATA_HOME"])
    for given in (home / "index.db", home):
        rc2, out2, _ = run(capsys, "inspect", "@local/imgs", "--index", str(given))
        assert rc2 == 0 and out2 == out


def test_inspect_shard_files_by_path_glob_and_brace_pattern(capsys, shard_files):
    first = shard_files / "data-000000.tar"
    for target, samples, shards in (
        (str(first), "4", "1"),
        (str(shard_files / "*.tar"), "7", "2"),
        (str(shard_files / "data-{000000..000001}.tar"), "7", "2"),
        (str(shard_files), "7", "2"),
    ):
        rc, out, err = run(capsys, "inspect", target)
        assert rc == 0, err
        fields = kv(out)
        assert fields["Samples"] == samples and fields["Shards"] == shards, target
        assert fields["Sample type"].startswith("DictSample") and fields["Checksums"].startswith("none")
        assert re.search(r"^\s+image\s+ndarray\s+<f4\s+\(64, 64\)$", out, re.M)
        assert re.search(r"^\s+label\s+int$", out, re.M)
        assert str(first) in out


def test_inspect_bad_targets_say_so_on_one_line(capsys, indexed, tmp_path):
    not_an_index = tmp_path / "notes.txt"
    not_an_index.write_text("hello, this is no database\n" * 50)
    cases = [
        (["inspect", "@local/nope"], 2, "no dataset named 'nope'"),
        (["inspect", str(tmp_path / "missing.tar")], 2, "no such file or folder"),
        (["inspect", "at://not a uri"], 2, "is not"),
        (["inspect", "@local/imgs", "--index", str(tmp_path / "none.db")], 2, "no index at"),
        (
            ["inspect", "@local/imgs", "--index", "postgresql://u:pw-secret-9@h/db"],
            2,
            "SQLite file path or a redis",
        ),
        (["preview", "@local/imgs", "-n", "-1"], 2, "-n -1"),
        (["inspect", "@local/imgs", "--shards", "-3"], 2, "--shards -3"),
        (["inspect", "@local/imgs", "--index", str(not_an_index)], 2, "is not an atdata-lab index"),
        (["preview", "@local/imgs", "--split", "test"], 2, "the dataset has the splits train"),
        (["schema", "show", "Nope"], 2, "no schema 'Nope' in the index; it has Img@1.0.0"),
        (["diagnose", "--timeout", "0"], 2, "--timeout 0"),
    ]
    for args, code, words in cases:
        rc, out, err = run(capsys, *args)
        assert rc == code and out == "", args
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, (args, err)
        assert "Traceback" not in err
    # the DSN's password is not echoed
    assert "pw-secret-9" not in run(capsys, "inspect", "x", "--index", "postgresql://u:pw-secret-9@h/db")[2]


def test_a_read_only_command_never_creates_an_index(capsys, tmp_path):
    rc, _, err = run(capsys, "inspect", "@local/imgs")
    assert rc == 2 and "write a dataset first" in err
    assert not (Path(os.environ["ATDATA_HOME"]) / "index.db").exists()
    assert not (tmp_path / "new.db").exists()


def test_a_corrupt_shard_is_a_failure_not_bad_input(capsys, shard_files):
    bad = shard_files / "data-000000.tar"
    bad.write_bytes(b"this is not a tar file" * 100)
    rc, out, err = run(capsys, "inspect", str(bad))
    assert rc == 1 and err.startswith("error: ") and "Traceback" not in err


def test_terminal_control_characters_in_data_are_not_printed(capsys, tmp_path):
    index = atdata.Index()
    index.write(
        [Img(image=np.zeros((2, 2), np.float32), label=0, caption="\x1b]0;owned\x07\x1b[2J")],
        name="ctl",
        description="line\x1b[31m red\rback",
        progress=False,
    )
    for args in (["inspect", "@local/ctl"], ["preview", "@local/ctl"]):
        rc, out, _ = run(capsys, *args)
        assert rc == 0 and "\x1b" not in out and "\r" not in out and "\x07" not in out


# ---------------------------------------------------------------------------------------------
# preview
# ---------------------------------------------------------------------------------------------
def test_preview_prints_n_samples_with_arrays_summarised(capsys, indexed, shard_files):
    rc, out, err = run(capsys, "preview", "@local/imgs", "-n", "3")
    assert rc == 0 and err == ""
    blocks = out.strip().split("\n\n")
    assert blocks[0] == "@local/imgs: 3 of 20 samples (Img)"
    assert len(blocks) == 4
    first = images(1)[0].image
    for k, block in enumerate(blocks[1:]):
        lines = block.splitlines()
        assert lines[0] == f"sample {k} of 20 (numbered 0–19) · key {k:06d} · shard imgs-000000.tar"
        assert re.match(r"\s+image:\s+ndarray float32 \(64, 64\) min \S+ max \S+ mean \S+ std \S+$", lines[1])
        assert re.match(rf"\s+label:\s+{k}$", lines[2]) and re.match(rf"\s+caption:\s+'cap {k}'$", lines[3])
    assert f"min {first.min():.6g} max {first.max():.6g}" in blocks[1]
    assert len(out) < 2000  # 3 x 4096 floats were never dumped
    rc, out, _ = run(capsys, "preview", str(shard_files / "*.tar"))
    assert rc == 0 and out.startswith(f"{shard_files / '*.tar'}: 5 of 7 samples (DictSample)")
    assert out.count("\nsample ") == 5 and "shard data-000001.tar" in out
    rc, out, _ = run(capsys, "preview", "@local/imgs", "-n", "100")
    assert rc == 0 and out.count("\nsample ") == 20


# ---------------------------------------------------------------------------------------------
# schema show / diff
# ---------------------------------------------------------------------------------------------
def _versions(index):
    """Img@1.0.0 (from the write), Img@1.1.0 (an optional field added), Img@2.0.0 (label -> str)."""

    @atdata.packable
    class Img:  # noqa: F811 - the same schema name, a newer version
        image: NDArray
        label: int
        caption: str
        note: Optional[str] = None

    @atdata.packable
    class ImgBreaking:
        image: NDArray
        label: str
        caption: str

    ImgBreaking.__name__ = "Img"
    ImgBreaking.__qualname__ = "Img"
    return index.publish_schema(Img), index.publish_schema(ImgBreaking, version="2.0.0")


def test_schema_show_by_name_ref_and_entry(capsys, indexed):
    minor, _ = _versions(indexed)
    assert minor.endswith("Img@1.1.0")
    rc, by_entry, _ = run(capsys, "schema", "show", "@local/imgs")
    assert rc == 0 and kv(by_entry)["Schema"] == "Img@1.0.0" and kv(by_entry)["From"] == "index entry imgs"
    assert re.search(r"^\s+image\s+ndarray\s+float32\s+\(64, 64\)\s+no$", by_entry, re.M)
    assert re.search(r"^\s+caption\s+str\s+no$", by_entry, re.M)
    rc, by_ref, _ = run(capsys, "schema", "show", "atdata://local/schema/Img@1.0.0")
    assert rc == 0 and kv(by_ref)["From"] == "local schema atdata://local/schema/Img@1.0.0"
    assert by_ref.split("\n\n", 1)[1] == by_entry.split("\n\n", 1)[1]  # the same field table
    rc, newest, _ = run(capsys, "schema", "show", "Img")
    assert (
        rc == 0 and kv(newest)["Schema"] == "Img@2.0.0" and re.search(r"^\s+label\s+str\s+no$", newest, re.M)
    )
    rc, pinned, _ = run(capsys, "schema", "show", "Img@1.1.0")
    assert rc == 0 and re.search(r"^\s+note\s+str\s+yes$", pinned, re.M)
    rc, _, err = run(capsys, "schema", "show", "Nope")
    assert rc == 2 and "no schema 'Nope'" in err and "Img@1.0.0" in err
    rc, _, err = run(capsys, "schema", "show", str(Path(indexed.get_entry_by_name("imgs").data_urls[0])))
    assert rc == 2 and "carry no schema" in err


def test_schema_diff_gives_the_verdict_and_the_next_version(capsys, indexed):
    _versions(indexed)
    expected = [
        ("Img@1.0.0", "@local/imgs", "identical", "1.0.0"),
        ("Img@1.0.0", "Img@1.1.0", "compatible", "1.1.0"),
        ("@local/imgs", "Img@2.0.0", "breaking", "2.0.0"),
        ("Img@1.1.0", "Img@1.0.0", "breaking", "2.0.0"),
    ]
    for a, b, verdict, version in expected:
        rc, out, err = run(capsys, "schema", "diff", a, b)
        assert rc == 0, err
        tail = dict(re.findall(r"^(Verdict|Next version):\s+(\S+)$", out, re.M))
        assert tail == {"Verdict": verdict, "Next version": version}, (a, b, out)
    rc, out, _ = run(capsys, "schema", "diff", "Img@1.0.0", "Img@2.0.0")
    assert re.search(r"^\s+label\s+int\s+str\s+changed: kind int -> str$", out, re.M)
    rc, out, _ = run(capsys, "schema", "diff", "Img@1.0.0", "Img@1.1.0")
    assert re.search(r"^\s+note\s+-\s+str \| None\s+added$", out, re.M)
    assert "Compatible: only optional fields were added; use version 1.1.0 next" in out


# ---------------------------------------------------------------------------------------------
# version, diagnose without a network
# ---------------------------------------------------------------------------------------------
def test_version(capsys):
    rc, out, _ = run(capsys, "version")
    assert rc == 0
    assert re.search(rf"^atdata-lab:\s+{re.escape(atdata.__version__)}$", out, re.M)
    assert re.search(r"^drop-in for:\s+atdata 0\.7 ", out, re.M)
    assert re.search(rf"^python:\s+{sys.version_info.major}\.{sys.version_info.minor}\.", out, re.M)
    assert re.search(rf"^numpy\s+{re.escape(np.__version__)}\s+required$", out, re.M)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_diagnose_reports_what_is_unreachable_and_hides_secrets(capsys, monkeypatch, indexed):
    port = _closed_port()
    monkeypatch.setenv("ATDATA_PDS_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ATDATA_HANDLE", "nobody.test")
    monkeypatch.setenv("ATDATA_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123")
    rc, out, err = run(capsys, "diagnose", "--timeout", "1")
    assert rc == 1
    status = dict(re.findall(r"^(index|data store|S3|PDS|account|PLC|sandbox)\s+(\S+)\s", out, re.M))
    assert status["index"] == "ok" and status["data store"] == "ok"
    assert status["PDS"] == "FAIL" and status["S3"] == "FAIL"
    assert status["account"] == "-"  # not tried: the PDS is down
    assert "1 dataset, 1 schema" in out and "credentials set" in out
    assert "not reachable or not usable: S3, PDS" in out
    for secret in ("hunter2-very-secret", "aws-secret-value-123"):
        assert secret not in out + err
    monkeypatch.setenv("ATDATA_TRUSTED_HOSTS", "127.0.0.1:1234")
    monkeypatch.delenv("ATDATA_PDS_URL")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    rc, out, _ = run(capsys, "diagnose", "--index", f"redis://:pa55word@127.0.0.1:{port}/0", "--timeout", "1")
    assert rc == 1 and "pa55word" not in out and f"redis://:***@127.0.0.1:{port}/0" in out
    assert re.search(r"^\s+trusted hosts:\s+127\.0\.0\.1:1234$", out, re.M)


def test_diagnose_with_nothing_configured_is_not_a_failure(capsys, monkeypatch):
    for name in ("ATDATA_PDS_URL", "ATDATA_HANDLE", "ATDATA_PASSWORD", "ATDATA_PLC_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    rc, out, _ = run(capsys, "diagnose")
    assert rc == 0 and "not created yet" in out
    assert not (Path(os.environ["ATDATA_HOME"]) / "index.db").exists()


# ---------------------------------------------------------------------------------------------
# the real command in a subprocess
# ---------------------------------------------------------------------------------------------
def test_the_command_in_a_subprocess(indexed, shard_files):
    env = {"ATDATA_HOME": os.environ["ATDATA_HOME"]}
    commands = [[sys.executable, "-m", "atdata_lab.cli"]]
    script = shutil.which("atdata-lab", path=str(Path(sys.executable).parent))
    if script:  # the console script installed with the package (make test installs it)
        commands.append([script])
    for command in commands:
        done = run_process("inspect", "@local/imgs", script=command, env=env)
        assert done.returncode == 0 and "Sample type:  Img@1.0.0" in done.stdout, done.stderr
        done = run_process("preview", str(shard_files), "-n", "1", script=command, env=env)
        assert done.returncode == 0 and "sample 0 of 7" in done.stdout
        bad = run_process("inspect", "@local/nope", script=command, env=env)
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.startswith("error: no dataset named 'nope'") and "Traceback" not in bad.stderr
        usage = run_process("inspect", script=command, env=env)
        assert usage.returncode == 2 and "TARGET" in usage.stderr
    # `| head` closes the pipe early: no traceback
    pipe = subprocess.run(
        f"{sys.executable} -m atdata_lab.cli preview {shard_files} -n 7 | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        timeout=120,
    )
    assert "Traceback" not in pipe.stderr and pipe.stdout.startswith(str(shard_files))


# ---------------------------------------------------------------------------------------------
# a Redis index (the real redis-server)
# ---------------------------------------------------------------------------------------------
@pytest.mark.redis
def test_a_redis_index(capsys, redis_server, redis_client):
    index = atdata.Index(redis=redis_client)
    index.write(images(5), name="in-redis", progress=False)
    rc, out, err = run(capsys, "inspect", "@local/in-redis", "--index", redis_server.url)
    assert rc == 0 and "Samples:      5" in out, err
    rc, out, _ = run(capsys, "diagnose", "--index", redis_server.url)
    assert re.search(r"^index\s+ok\s+redis redis://", out, re.M) and "1 dataset, 1 schema" in out


# ---------------------------------------------------------------------------------------------
# published datasets and diagnose on the real sandbox PDS
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def published(pds_account):
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    index.write(images(12, seed=3), name="pub-imgs", maxcount=6, progress=False)
    uri = index.plan_promotion("pub-imgs", copy_to="blobs").execute(progress=False).at_uri
    return index, uri


@pytest.mark.sandbox
def test_inspect_and_preview_a_published_dataset(capsys, pds_account, published):
    index, uri = published
    local = index.get_entry_by_name("pub-imgs")
    for target in (uri, f"@{pds_account.handle}/pub-imgs"):
        rc, out, err = run(capsys, "inspect", target)
        assert rc == 0, err
        fields = kv(out)
        assert fields["Name"] == "pub-imgs" and fields["Samples"] == "12" and fields["Shards"] == "2"
        assert fields["Sample type"] == "Img@1.0.0 (published schema)"
        assert fields["Schema"].startswith(f"at://{index.atmosphere.did}/science.alt.dataset.schema/")
        assert fields["Storage"] == "2 PDS blob(s)" and fields["Checksums"] == "sha256 for 2 of 2 shards"
        assert fields["Published"] == uri and fields["CID"] == local.cid
        assert f"published on {os.environ['ATDATA_PDS_URL']}" in out
        assert "com.atproto.sync.getBlob" in out
    rc, out, err = run(capsys, "preview", uri, "-n", "2")
    assert rc == 0, err
    assert out.startswith(f"{uri}: 2 of 12 samples (Img)") and out.count("\nsample ") == 2
    assert re.search(r"^\s+caption:\s+'cap 1'$", out, re.M)
    rc, out, err = run(capsys, "schema", "show", uri)
    assert rc == 0 and kv(out)["Schema"] == "Img@1.0.0" and kv(out)["From"] == f"published dataset {uri}"
    rc, out, _ = run(capsys, "schema", "diff", "@local/pub-imgs", uri)
    assert rc == 0 and re.search(r"^Verdict:\s+identical$", out, re.M)
    schema_uri = index.get_dataset(uri).schema_ref
    rc, out, _ = run(capsys, "schema", "show", schema_uri)
    assert rc == 0 and kv(out)["From"] == f"published schema {schema_uri}"
    # the published dataset, read in a fresh process where nobody is logged in
    done = run_process("inspect", uri, env={"ATDATA_HOME": os.environ["ATDATA_HOME"]})
    assert done.returncode == 0 and "Storage:      2 PDS blob(s)" in done.stdout, done.stderr
    missing = uri.rsplit("/", 1)[0] + "/3zzzzzzzzzzzz"
    rc, _, err = run(capsys, "inspect", missing)
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.sandbox
def test_diagnose_against_the_sandbox_never_prints_the_password(capsys, pds_account, monkeypatch):
    rc, out, err = run(capsys, "diagnose")
    assert rc == 0, out
    status = dict(re.findall(r"^(index|data store|S3|PDS|account|PLC|sandbox)\s+(\S+)\s", out, re.M))
    assert status["PDS"] == "ok" and status["account"] == "ok"
    assert os.environ["ATDATA_PDS_URL"] in out and "reachable" in out
    assert re.search(
        rf"^account\s+ok\s+{re.escape(pds_account.handle)} \(ATDATA_HANDLE\), password set", out, re.M
    )
    assert f"logged in as {pds_account.did}" in out
    host = os.environ["ATDATA_PDS_URL"].removeprefix("http://")
    assert re.search(rf"^\s+trusted hosts:\s+.*{re.escape(host)}", out, re.M)
    assert pds_account.password not in out + err
    # in a subprocess, through the real environment, too
    done = run_process("diagnose", env={"ATDATA_HOME": os.environ["ATDATA_HOME"]})
    assert done.returncode == 0 and pds_account.password not in done.stdout + done.stderr
    # a wrong password: the login fails, and neither password is printed
    monkeypatch.setenv("ATDATA_PASSWORD", "wrong-" + pds_account.password)
    rc, out, err = run(capsys, "diagnose")
    assert rc == 1 and re.search(r"^account\s+FAIL\s", out, re.M)
    assert pds_account.password not in out + err
