"""The zoomable view's cost: one DeepZoom pyramid made as the collector makes it
(``pipeline.pyramids``: the file read a band of rows at a time, 254-pixel JPEG tiles written into
one zip as each row of them is complete), its time
and the peak memory of the process, at each size of ``bench.gigapixel``'s photo-like inputs.

    .venv/bin/python -m bench.pyramid --sizes 24,250,1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.gigapixel import SIZES, make_input
from imagepipe.processes import MALLOC

# In a process of its own per size, so that its peak is that size's alone.
ONE = """import json, sys, time, resource, tempfile
from pathlib import Path
from PIL import Image
started = time.perf_counter()
from imagepipe.core.bands import Bands
from imagepipe.core.deepzoom import write_pyramid
with open(Path(sys.argv[2]) / "pyramid.zip", "wb") as zipped:
    write_pyramid(Bands(lambda: open(sys.argv[1], "rb"), Image.open(sys.argv[1])), zipped, "jpg")
    size = zipped.tell()
print(json.dumps({"seconds": round(time.perf_counter() - started, 1),
                  "zip MB": round(size / 2**20),
                  "peak MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,250,1000")
    args = parser.parse_args()
    env = {**os.environ, **MALLOC, "DJANGO_SETTINGS_MODULE": "imagepipe.settings"}  # as the collector runs
    for megapixels in (int(value) for value in args.sizes.split(",")):
        original = make_input(*SIZES[megapixels], "jpg")
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run(
                [sys.executable, "-c", "import django; django.setup()\n" + ONE, str(original), folder],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        print(
            json.dumps({"megapixels": megapixels, **json.loads(done.stdout.strip().splitlines()[-1])}),
            flush=True,
        )


if __name__ == "__main__":
    main()
