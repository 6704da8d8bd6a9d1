"""libvips (``pyvips``) set up to hold as little as it can: imported by every module that uses it.

- Its operation cache is off: it would keep decoded images alive after the code that read them.
- Its line cache is short. An image read in sequential mode (``bands.Bands``) is decoded through a
  cache of the rows last decoded, four times libvips' buffer height (``vips_get_tile_size``: at
  least its tile height, 128 rows by default, and twice its fat-strip height, 16): 512 rows,
  61 MB of a 40,000 px wide RGB image, whatever is fetched. With a tile height of 8 and a
  fat-strip height of 4 it is 32 rows, grown to the 16 fetched at a time, and decoding is no
  slower (a 40,000 px JPEG's first 6,000 rows cut in rows of tiles: 67 MB peak at a tile height
  of 16, 56 MB at 8 and 4, 203 MB at the defaults; 3.75–3.85 s each). libvips takes these only
  as its command-line options ``--vips-tile-height`` and ``--vips-fatstrip-height``, so they are
  given through libvips' own option parser (``vips_add_option_entries``, public, into a GLib
  option context).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import pyvips

logger = logging.getLogger(__name__)

__all__ = ["pyvips", "set_options"]

TILE_HEIGHT = 8  # rows; libvips' default is 128
FATSTRIP_HEIGHT = 4  # rows; libvips' default is 16

pyvips.cache_set_max(0)


def loaded_library() -> str | None:
    """The path of the libvips this process loaded (pyvips' binary wheel's, or the system's)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if Path(path).name.startswith("libvips") and ".so" in path and "cpp" not in Path(path).name:
            return path
    return None


def set_options(*options: str) -> bool:
    """Parse libvips' command-line ``options`` (``--vips-…``) in this process, as a program using
    libvips' option group would; False (and a warning) if this libvips can't be reached so."""
    path = loaded_library()
    try:
        lib = ctypes.CDLL(path) if path else None
        if lib is None:
            raise OSError("no libvips loaded")
        lib.g_option_context_new.restype = ctypes.c_void_p
        lib.g_option_context_new.argtypes = [ctypes.c_char_p]
        lib.g_option_group_new.restype = ctypes.c_void_p
        lib.g_option_group_new.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_void_p] * 2
        lib.vips_add_option_entries.argtypes = [ctypes.c_void_p]
        lib.g_option_context_set_main_group.argtypes = [ctypes.c_void_p] * 2
        lib.g_option_context_parse.argtypes = [ctypes.c_void_p] * 4
        lib.g_option_context_parse.restype = ctypes.c_int
        lib.g_option_context_free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError) as exc:
        logger.warning("libvips' options %s not set (%s): it uses more memory", options, exc)
        return False
    context = lib.g_option_context_new(b"")
    group = lib.g_option_group_new(b"vips", b"", b"", None, None)
    lib.vips_add_option_entries(group)
    lib.g_option_context_set_main_group(context, group)  # the context owns the group now
    words = [b"imagepipe", *(option.encode() for option in options)]
    argv = (ctypes.c_char_p * (len(words) + 1))(*words, None)
    argc = ctypes.c_int(len(words))
    pointer = ctypes.pointer(ctypes.cast(argv, ctypes.POINTER(ctypes.c_char_p)))
    parsed = bool(lib.g_option_context_parse(context, ctypes.byref(argc), pointer, None))
    lib.g_option_context_free(context)
    if not parsed:
        logger.warning("libvips refused its options %s: it uses more memory", options)
    return parsed


set_options(f"--vips-tile-height={TILE_HEIGHT}", f"--vips-fatstrip-height={FATSTRIP_HEIGHT}")
