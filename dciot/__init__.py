"""Dongchang IoT command-line tools and local runtime helpers."""
