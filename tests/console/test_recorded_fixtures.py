"""The recorded answers in tests/fixtures/recorded: complete, indexed, and free of anything that
must not be committed (a token, a folder of the recording machine, its host name).

Why: the source tests replay these answers instead of skipping when a shared folder is absent,
so the folder must hold every file its index names, and a re-recording must never slip a
secret or a machine-specific path into the repository.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from test_sources_http import RECORDED, capture

ROOT = Path(__file__).resolve().parents[2]
INDEX = json.loads((RECORDED / "INDEX.json").read_text())


def _recorder() -> ModuleType:
    """scripts/record_fixtures.py, loaded by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("record_fixtures", ROOT / "scripts" / "record_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_every_indexed_answer_is_there_and_nothing_else() -> None:
    files = [a["file"] for a in INDEX["answers"]]
    assert len(files) == len(set(files))
    on_disk = {p.name for p in RECORDED.iterdir()} - {"INDEX.json", "INDEX.md"}
    assert on_disk == set(files)
    for a in INDEX["answers"]:
        assert a["file"] == f"{a['file'].rsplit('.', 2)[0]}.{a['status']}.json"
        assert a["request"].startswith("/") and a["method"] in {"GET", "POST", "DELETE"}
        assert a["shows"]


def test_no_token_folder_or_host_name_in_any_answer() -> None:
    jwt = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
    for a in INDEX["answers"]:
        body = capture(a["file"])
        assert not jwt.search(body), a["file"]
        assert b"/tmp/" not in body and b"\\/tmp\\/" not in body, a["file"]
        assert str(ROOT).encode() not in body, a["file"]


def test_the_index_names_the_stack_it_was_recorded_from() -> None:
    stack = INDEX["stack"]
    assert not any(k.startswith("token") for k in stack)
    assert stack["host_label"] in {"Hostname", "hostname"}
    assert {j["name"] for j in stack["extra_jobs"]} == {"exits-3", "array-held", "no-limit-held",
                                                         "cancelled"}


def test_scrub_rewrites_folders_host_and_tokens_only() -> None:
    rf = _recorder()
    r = rf.Recorder({"state_dir": "/tmp/aisc-record-x/stack", "public_dir": "/tmp/aisc-stack-y"},
                    secrets=["eyJsecret.token.value"])
    host = rf.socket.gethostname()
    body = json.dumps({"cwd": "/tmp/aisc-record-x/stack/logs", "conf": "/tmp/aisc-stack-y/slurm.conf",
                       "hostname": host, "url": f"http://{host}:9090/graph",
                       "echo": "eyJsecret.token.value"}).encode()
    escaped = body.replace(b"/", b"\\/")  # slurmrestd escapes "/" in its JSON
    assert json.loads(r.scrub(body)) == json.loads(r.scrub(escaped)) == {
        "cwd": "/srv/lab/logs", "conf": "/srv/lab/slurm.conf", "hostname": "lab-host",
        "url": "http://lab-host:9090/graph", "echo": "<redacted>"}
    assert r.scrub(b"") == b""


@pytest.mark.parametrize("name", ["slurm_auth_bad_token.500.json",
                                  "slurm_nodes_update_time_after_job.500.json"])
def test_the_two_unspecified_errors_share_a_body_shape(name: str) -> None:
    """Slurm 22.05 answers a bad token and a node-only change since ``update_time`` with the same
    500 "Unspecified error": the recording keeps both, for the tests that tell them apart."""
    (error,) = json.loads(capture(name))["errors"]
    assert error["error"] == "Unspecified error"
