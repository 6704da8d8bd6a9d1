"""Static files as the image serves them: collected by the Dockerfile's own build step under the
production settings, then served by WhiteNoise with hashed names a browser may keep for ever."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from imagepipe.processes import BASE_DIR
from tests.test_production import SECRET, environment

ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# Run after the build, in the production settings: what a browser gets for two of the pages' files.
SERVE = """
import json, django
django.setup()
from django.templatetags.static import static
from django.test import Client
hashed = static("jobs/job.js")
client = Client(HTTP_HOST="build")
answers = {"hashed": hashed}
for url in (hashed, "/static/jobs/job.js", "/static/jobs/nope.js"):
    response = client.get(url, secure=True)
    answers[url] = [response.status_code, response.get("Cache-Control")]
print(json.dumps(answers))
"""


def build_step() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's collectstatic RUN: its variables and its command."""
    text = (BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("RUN") and "collectstatic" in line]
    words = shlex.split(line.removeprefix("RUN"))
    return assignments(words), [w for w in words if not ASSIGNMENT.match(w)]


def image_env() -> dict[str, str]:
    """The ENV the Dockerfile gives every container."""
    text = (BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.removeprefix("ENV ") for line in text.splitlines() if line.startswith("ENV ")]
    return assignments([word for line in lines for word in shlex.split(line)])


def assignments(words: list[str]) -> dict[str, str]:
    found = {}
    for word in words:
        if ASSIGNMENT.match(word):
            name, _, value = word.partition("=")
            found[name] = value
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    var = tmp_path_factory.mktemp("var")
    variables, command = build_step()
    assert command[:2] == ["python", "manage.py"]
    env = environment(**image_env(), **variables, IMAGEPIPE_VAR=str(var))
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return var / "static", env


def test_the_image_is_built_to_run_in_production():
    assert image_env()["PRODUCTION"] == "true"


def test_the_build_collects_every_file_under_a_hashed_name(built):
    static, _ = built
    manifest = json.loads((static / "staticfiles.json").read_text())["paths"]
    assert re.fullmatch(r"jobs/job\.[0-9a-f]{12}\.js", manifest["jobs/job.js"])
    assert (static / manifest["jobs/job.js"]).is_file()
    assert (static / (manifest["jobs/job.js"] + ".gz")).is_file()  # served to whoever accepts gzip
    assert "admin/css/base.css" in manifest


def test_production_pages_name_the_hashed_files_and_browsers_may_keep_them(built):
    _, env = built
    done = subprocess.run(
        [sys.executable, "-c", SERVE],
        cwd=BASE_DIR,
        env={**env, "SECRET_KEY": SECRET},  # the web's: what WhiteNoise has not, Django answers
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    hashed = answers["hashed"]
    assert re.fullmatch(r"/static/jobs/job\.[0-9a-f]{12}\.js", hashed)
    assert answers[hashed] == [200, "max-age=315360000, public, immutable"]
    assert answers["/static/jobs/job.js"][0] == 200  # the unhashed name too, cached briefly
    assert answers["/static/jobs/job.js"][1] != "max-age=315360000, public, immutable"
    assert answers["/static/jobs/nope.js"][0] == 404
