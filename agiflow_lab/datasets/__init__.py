"""Datasets: versioned collections of ``{input, expected, metadata}`` items that evaluation runs read."""
