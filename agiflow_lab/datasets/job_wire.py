"""Messages between a data-preparation job's kernel and its worker's job API.

A job's kernel reads and writes datasets *of its own project* (the project is the job's, never a
parameter): it pins a version, pages through its items and writes new datasets or versions. The bodies
of the writes are the REST API's own (``DatasetCreate``, ``ItemsWrite``), validated by the same service,
so a job's writes obey the same limits and leave the same audit rows as a person's.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

DATASETS_PATH = "/datasets"


class DatasetPin(BaseModel):
    """A dataset version resolved for the job: what it reads, and how many items that is."""

    name: str
    version: int = Field(description="0: the empty dataset, before anything was written")
    item_count: int
