"""One libvips process on the same jobs as bench.e2e's speed table, for comparison.

libvips is not a dependency of ImagePipe (none of its filters gives Pillow's bytes, see
../shared/KERNELS.md); this only times it. It needs libvips and pyvips, in any Python:

    apt-get install libvips42 && python -m venv /tmp/vips && /tmp/vips/bin/pip install pyvips
    /tmp/vips/bin/python bench/vips.py photo24.jpg [--repeat 2]

Each job is timed as the single Pillow process is in bench.e2e: open, the operation, PNG at
compression 1, in a fresh process, the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile

JOBS = {
    "grayscale": "image.colourspace('b-w')",
    "gaussian_blur r4": "image.gaussblur(4)",
    "median 5": "image.median(5)",
    "resize 50 % lanczos": "image.resize(0.5, kernel='lanczos3')",
    "resize to 2000 wide lanczos": "image.resize(2000 / image.width, kernel='lanczos3')",
}
RUN = """import sys, time
started = time.perf_counter()
import pyvips
image = pyvips.Image.new_from_file(sys.argv[1], access="sequential")
({operation}).pngsave(sys.argv[2], compression=1)
print(time.perf_counter() - started)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for name, operation in JOBS.items():
            script = RUN.format(operation=operation)
            times = [
                float(
                    subprocess.run(
                        [sys.executable, "-c", script, args.image, f"{workdir}/out.png"],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                for _ in range(args.repeat)
            ]
            print(f"{name}: {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
