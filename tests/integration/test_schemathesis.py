"""Schemathesis, driven by /api/schema/, against the running web server: no request makes a 5xx."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_schemathesis_finds_no_server_error(api, system, tmp_path):
    schema = api.get(f"{api.base}/api/schema/", params={"format": "json"})
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_text(json.dumps(schema.json()))
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [
            str(st),
            "run",
            str(tmp_path / "schema.json"),
            "--url",
            system.url,
            "--header",
            f"Authorization: {api.headers['Authorization']}",
            # DELETE /api/auth/token/ would revoke the very token every other request is sent with.
            "--exclude-operation-id",
            "auth_token_destroy",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "12",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
