"""Benchmarks for ImagePipe (see bench/README.md)."""
