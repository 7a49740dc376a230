"""The JSON-schema pass of ``validate=True``: a stored OME-Zarr document against the
official OME-NGFF schemas of its own version, offline.

The schemas of 0.4, 0.5 and 0.6 are bundled as package data
(``ngff_gpu/model/ngff_schemas/<version>/``, the OME-NGFF specification's own files,
BSD-2-Clause, see the README there). Every file of a version is registered under its
``$id`` with ``referencing``, so the cross-file ``$ref`` of 0.6 (axes, coordinate
systems, transformations) resolve locally; nothing is fetched. OME publishes no
0.9.dev1 schema: :func:`registry` derives it from 0.6's, as RFC-3 and RFC-4 change
0.6 (the version tag; the axis-count and space-axis constraints and the bounds on
``mapAxis``/``projectAxis`` axis indices lifted; an axis ``orientation`` from RFC-4's
vocabulary; the release's omero channel: a window of ``start`` and ``end``, an
``inverted`` flag). ngff-zarr 0.50's own 0.9.dev1 tree is the oracle the tests compare it
with.

The version that selects the schemas is the one the document records (``ome.version``;
``multiscales[0].version`` for 0.4), as ngff-zarr 0.50 reads it: a pre-release tag
validates against its release's schemas (``0.6rc0``, which 0.6's ``_version.schema``
lists), the superseded ``0.6.dev4`` that earlier writers recorded is substituted by
``0.6`` with a ``UserWarning`` (the rest of the document is still checked), and any
other string is refused by name (:func:`schema_version`) rather than joined onto a
path.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from ngff_gpu.errors import InvalidStoreError, SchemaValidationError
from ngff_gpu.model.axes import AnatomicalOrientationValues
from ngff_gpu.model.metadata import RFC3_VERSION

#: Versions whose schemas are bundled (0.9.dev1 derived from 0.6's, see the module doc).
BUNDLED_VERSIONS = ("0.4", "0.5", "0.6", RFC3_VERSION)
#: 0.6 pre-release tags that earlier writers recorded and that 0.6's ``_version.schema``
#: no longer lists; validated with ``0.6`` substituted, and reported.
SUPERSEDED_06_TAGS = frozenset({"0.6.dev4"})
_NGFF_URI = "https://ngff.openmicroscopy.org"
_PRERELEASE = re.compile(r"^(\d+\.\d+)(?:\.?(?:a|b|rc|dev)\d*)$")


def schema_version(version: Any) -> str:
    """The bundled schema tree for a recorded ``version``: the version itself, or the
    release a pre-release tag leads to (``0.6rc0`` -> ``0.6``).

    Raises
    ------
    InvalidStoreError
        (a ``ValueError``) "No JSON Schema is bundled for OME-Zarr version ..." for any
        other value (a later release, a forged string, a post-release).
    """
    name = str(version)
    if name in BUNDLED_VERSIONS:
        return name
    match = _PRERELEASE.match(name)
    if match and match.group(1) in BUNDLED_VERSIONS:
        return match.group(1)
    raise InvalidStoreError(f"No JSON Schema is bundled for OME-Zarr version {name!r}. "
                            f"Bundled versions: {', '.join(BUNDLED_VERSIONS)}.")


def _read_tree(version: str) -> dict[str, dict[str, Any]]:
    folder = resources.files("ngff_gpu.model").joinpath("ngff_schemas", version)
    return {entry.name: json.loads(entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir() if entry.name.endswith(".schema")}


def _rfc3_tree() -> dict[str, dict[str, Any]]:
    """0.9.dev1's schemas: 0.6's, with RFC-3's and RFC-4's changes (module doc)."""
    tree = copy.deepcopy(_read_tree("0.6"))
    tree["_version.schema"]["enum"] = [RFC3_VERSION]
    axes = tree["axes.schema"]
    for key in ("maxItems", "oneOf", "minContains", "maxContains", "$comment"):
        axes.pop(key, None)  # RFC-3: any number of axes, of any types
    axes["$defs"]["axis"]["properties"]["orientation"] = {
        "type": "object",
        "properties": {"type": {"enum": ["anatomical"]},
                       "value": {"enum": [v.value for v in AnatomicalOrientationValues]}},
        "required": ["type", "value"],
    }
    # RFC-3: axis indices of mapAxis and projectAxis have no upper bound (0.6: 0..4), nor
    # their lists a length bound beyond one index (0.6: mapAxis 2..5, projectAxis 1..3).
    defs = tree["coordinate_transformations.schema"]["$defs"]
    defs["mapAxis"]["properties"]["mapAxis"].pop("minItems", None)
    for node in _nodes(defs["mapAxis"]) + _nodes(defs["projectAxis"]):
        node.pop("maxItems", None)
        if node.get("type") == "integer":
            node.pop("maximum", None)
    # The omero channel of the 0.9.dev1 release, as ngff-zarr 0.50 checks it: a window
    # needs only start and end, ``inverted`` is a boolean, ``family`` is free.
    channel = tree["image.schema"]["$defs"]["omero"]["properties"]["channels"]["items"]
    channel["properties"]["window"]["required"] = ["start", "end"]
    channel["properties"].pop("family", None)
    channel["properties"]["inverted"] = {"type": "boolean"}
    return tree


def _nodes(node: Any) -> list[dict[str, Any]]:
    """Every object of a JSON tree, ``node`` included."""
    found = [node] if isinstance(node, dict) else []
    for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) \
            else ():
        found += _nodes(child)
    return found


@cache
def _tree(version: str) -> dict[str, dict[str, Any]]:
    return _rfc3_tree() if version == RFC3_VERSION else _read_tree(version)


@cache
def registry(version: str) -> Any:
    """A ``referencing`` registry of every bundled schema of ``version`` under its
    ``$id`` (draft 2020-12 where a file names no draft, as the strict ones)."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resources(
        (contents.get("$id", _NGFF_URI),
         Resource.from_contents(contents, default_specification=DRAFT202012))
        for contents in _tree(version).values())


def _recorded_version(document: Mapping[str, Any]) -> Any:
    ome = document.get("ome")
    if isinstance(ome, Mapping):
        return ome.get("version") or "0.5"  # a missing or null ome.version reads as 0.5
    for key in ("plate", "well"):  # 0.4 plates and wells carry their own version
        if isinstance(document.get(key), Mapping):
            return document[key].get("version") or "0.4"
    entries = document.get("multiscales")
    first = entries[0] if isinstance(entries, list) and entries else {}
    return (first.get("version") if isinstance(first, Mapping) else None) or "0.4"


def validate_document(document: Mapping[str, Any], model: str = "image",
                      store: str | None = None) -> str:
    """Check a group's attributes (``{"ome": {...}}``, or the 0.4 attributes) against
    the bundled schema ``model`` (``image``, ``scene``, ``plate``, ``well``, ``label``)
    of the version the document records (an ``ome`` block without one is 0.5's, and
    is checked with ``"version": "0.5"``, as ngff-zarr reads it).

    Returns
    -------
    str
        The schema version used.

    Raises
    ------
    SchemaValidationError
        (an :class:`InvalidStoreError`, and a ``jsonschema.ValidationError``) for the
        schema's most relevant error (``jsonschema.exceptions.best_match``).
    InvalidStoreError
        "No JSON Schema is bundled" for a version no schema is bundled for.

    Warns
    -----
    UserWarning
        For a superseded 0.6 pre-release tag (``0.6.dev4``), checked as ``0.6``.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    recorded = _recorded_version(document)
    ome = document.get("ome")
    if isinstance(ome, Mapping) and ome.get("version") is None:
        # An 'ome' block without a version is 0.5's (as it is read): checked as "0.5".
        document = {**document, "ome": {**ome, "version": recorded}}
    if isinstance(recorded, str) and recorded in SUPERSEDED_06_TAGS:
        warnings.warn(f"{store + ': ' if store else ''}the OME-Zarr store carries the "
                      f"superseded 0.6 pre-release tag {recorded!r}; the 0.6 schemas accept "
                      "'0.6'. Validating the rest of the document with that tag substituted; "
                      "upgrade_ome_zarr(store, version='0.6') rewrites the tag.",
                      UserWarning, stacklevel=3)
        document = {**document, "ome": {**document["ome"], "version": "0.6"}}
        recorded = "0.6"
    version = schema_version(recorded)
    tree = _tree(version)
    name = f"{model}.schema"
    if name not in tree:
        raise InvalidStoreError(f"No JSON Schema is bundled for an OME-Zarr {version} "
                                f"{model!r} (bundled: {', '.join(sorted(tree))})")
    validator = Draft202012Validator(tree[name], registry=registry(version))
    error = best_match(validator.iter_errors(document))
    if error is not None:
        raise SchemaValidationError.create(
            error.message, version=version, schema=name, path=list(error.absolute_path),
            validator=error.validator, validator_value=error.validator_value,
            instance=error.instance, store=store)
    return version
