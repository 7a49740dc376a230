"""Why an ngff-zarr test fails against ngff_gpu: one :class:`Cause` per documented row.

Each cause names the row of the README's "Differences from ngff-zarr" table that
explains it (``row``, the row's first cell, checked against the README by
``tests/test_ngff_zarr_compat.py``) and says which failures it covers: test node ids
(regular expressions matched against the start of ``file::test``) or failure
messages. A failure that no cause covers is "UNEXPLAINED", and the
compatibility test fails on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    """A documented difference and the failures it explains.

    Attributes
    ----------
    key : str
        Short name, printed in the table.
    row : str
        The first cell of the README row (Differences from ngff-zarr).
    tests : tuple of str
        Regular expressions matched at the start of the node id (``test/x.py::t``).
    messages : tuple of str
        Regular expressions searched in the failure message; a failure is covered
        when its node id or its message matches.
    """

    key: str
    row: str
    tests: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def covers(self, nodeid: str, message: str) -> bool:
        return (any(re.match(p, nodeid) for p in self.tests)
                or any(re.search(p, message) for p in self.messages))


#: Every documented difference that a failing test can be put down to. The order
#: matters: the first cause that covers a failure is its cause.
CAUSES: tuple[Cause, ...] = (
    # no ngff-zarr test fails on it now: resampling through fields is what the row keeps
    Cause("scenes", "OME-Zarr 0.6 scenes and resampling through fields", tests=()),
    Cause("metadata-form", "Metadata form and repr",
          tests=(r"test/test_ngff_validation\.py::"
                 r"test_v06_write_refuses_a_top_level_transform_without_references",
                 # datasets[0].coordinateTransformations[0] read as 0.6's sequence
                 r"test/test_canonical_axis_order\.py::test_scale_and_translation_follow_the_"
                 r"axes$",
                 r"test/test_to_multiscales_translate\.py::test_multiscale_translate$"),
          messages=(r"coordinateSystems", r"intrinsic_coordinate_system")),
    Cause("v0.9", "OME-Zarr 0.9.dev1 model classes",
          tests=(r"test/test_rfc3_axes\.py::test_gate_skips_coordinate_systems_the_target_"
                 r"version_drops",
                 r"test/test_v09_metadata\.py::test_read_coordinate_system_shape",
                 r"test/test_v09_metadata\.py::test_read_flat_axes_shape")),
    Cause("scale-strategy", "`scale_strategy=\"pad\"`",
          tests=(r"test/test_non_power_of_2_scale_factors\.py::test_scale_strategy_defaults_to_pad",
                 r"test/test_non_power_of_2_scale_factors\.py::test_scale_strategy_pad_opt_in")),
    Cause("codec-objects", "Codec objects",
          tests=(r"test/test_migration_guide_v0_44\.py::TestArrayLevelNthreads::"
                 r"test_array_level_nthreads_rejected$",)),
    Cause("unknown-kwargs", "Unknown keyword arguments",
          tests=(r"test/test_zarrista_compat\.py::test_path_store_warns_on_unknown_array_kwarg$",)),
    Cause("engine-internals", "ngff-zarr's engines and caches",
          tests=(r"test/test_local_readers_zarrista\.py", r"test/test_from_ngff_zarr_zarrista\.py",
                 r"test/test_zarrista_compat\.py", r"test/test_to_ngff_zarr_zarrista\.py",
                 r"test/test_cache_behavior\.py", r"test/test_simple_cache\.py",
                 r"test/test_writer_isolation\.py",
                 r"test/test_write_region_sizing\.py", r"test/test_v2_store_reader\.py",
                 r"test/test_open_array\.py", r"test/test_tiff_zarr_free\.py",
                 # spies on ngff-zarr's private zip writer (ours stages beside the archive)
                 r"test/test_ozx_staging\.py::test_ozx_staged_next_to_the_archive$",
                 # ngff-zarr's ITK-Wasm block-size guard, tested by patching its limits
                 r"test/test_itkwasm_block_limits\.py::test_oversized_block_raises_before_compute",
                 r"test/test_itkwasm_block_limits\.py::test_gaussian_counts_integer_input_as_float32",
                 # an interrupted append, simulated by patching ngff-zarr's array writer
                 r"test/test_to_ngff_zarr_start_level\.py::test_interrupted_append_leaves",
                 r"test/test_to_ngff_zarr_start_level\.py::test_interrupted_repeated_append",
                 r"test/test_matrix_transform_arrays\.py::test_an_interrupted_append_lists_its_"
                 r"matrices",
                 # patch ngff-zarr's zarrista group writers inside its hcs module
                 r"test/test_hcs_zarr_format\.py::test_to_hcs_zarr_path_store_uses_zarrista$",
                 r"test/test_hcs_zarr_format\.py::test_write_hcs_well_image_path_store_uses_"
                 r"zarrista$"),
          messages=(r"zarr-python used", r"cache was not written")),
    Cause("structural-validation", "Validation on read",
          tests=(r"test/test_ngff_validation\.py::test_read_path_schema_instance_by_version$",
                 r"test/test_structural_validation_reader\.py::test_scale_length_violation_raises_"
                 r"only_when_validating$")),
    Cause("overwrite-guard", "Overwriting the store being read",
          tests=(r"test/test_to_ngff_zarr_overwrite_guard\.py::test_overwrite_of_read_store_raises",
                 r"test/test_to_ngff_zarr_overwrite_guard\.py::test_image_opened_from_the_array",
                 r"test/test_to_ngff_zarr_overwrite_guard\.py::test_level_alone_in_reading")),
    Cause("write-targets", "Store objects",
          tests=(r"test/test_migration_guide_v0_44\.py::TestWriteTargetRejection",
                 r"test/test_from_ngff_zarr\.py::test_from_ngff_zarr_rejects_zarr_python_store",
                 r"test/test_upgrade_ome_zarr\.py::test_write_to_new_store_rejects_store")),
    Cause("hcs-writer", "HCS plates through ngff-zarr's `hcs` module",
          # the plate lists the wells that got a field, not every declared well
          tests=(r"test/test_hcs_ozx\.py::test_write_hcs_well_image_to_ozx$",)),
    Cause("shard-count", "`chunks_per_shard` as an int",
          tests=(r"test/test_to_ngff_zarr_sharding\.py::test_a_shard_is_capped",)),
    Cause("remote", "Remote stores",
          # each patches ngff-zarr's remote-reader probe and expects "ngff-zarr[remote]"
          tests=tuple(r"test/test_from_ngff_zarr\.py::test_from_ngff_zarr_remote_missing_"
                      rf"backend_helpful_error\[{url}\]$" for url in (
                          r"azure://container/does-not-matter\.zarr",
                          r"gs://bucket/does-not-matter\.zarr",
                          r"http://example\.com/does-not-matter\.zarr",
                          r"https://example\.com/does-not-matter\.zarr",
                          r"s3://bucket/does-not-matter\.zarr"))),
    Cause("error-messages", "Error messages",
          messages=(r"Regex pattern did not match", r"DID NOT WARN")),
)


def classify(nodeid: str, message: str) -> Cause | None:
    """The cause that covers a failure, or None."""
    for cause in CAUSES:
        if cause.covers(nodeid, message):
            return cause
    return None
