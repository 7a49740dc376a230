"""Stage 3, model: the data users hold.

``NgffImage`` (an array with dims, scale, translation), the OME-NGFF ``Metadata``
dataclasses and their JSON, and ``Multiscales`` (images + metadata).  Plain data: no
plan, no I/O.  Depends on the base layer and ``compute`` (dtype rules).
"""
