"""The whole tiled pipeline in one process, and the exact comparison its results are held to."""

from imagepipe.core.kernels import ENGINES
from imagepipe.core.operations import parse_chain
from imagepipe.core.pipeline import run_tiled


def tiled(image, chain, tile_size, engine="pillow"):
    """The whole pipeline in one process: stages, tiles, statistics, assembly, with the workers'
    ``engine`` (``kernels.ENGINES``)."""
    return run_tiled(image, parse_chain(chain), tile_size, ENGINES[engine])


def same_pixels(a, b):
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()
