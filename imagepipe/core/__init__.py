"""ImagePipe's image core: tiling geometry, operations and the tile codec.

Plain Python and Pillow only -- no Django import -- so workers, the collector,
tests and benchmarks share exactly the same pixel code.
"""
