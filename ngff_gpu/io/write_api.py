"""ngff-zarr's writing names, :func:`to_ngff_zarr` and :func:`to_ome_zarr`: its
parameters in its order, checked, then handed to
:func:`~ngff_gpu.io.writer.write_multiscales` (our parameters keyword-only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ngff_gpu.errors import ArgumentError, ArgumentTypeError
from ngff_gpu.io.scene_write import is_scene, write_scene
from ngff_gpu.io.transform_store import is_transformation, write_transformation
from ngff_gpu.io.writer import write_multiscales
from ngff_gpu.model.multiscales import STORE_IO, Multiscales


def _check_chain(serializer: Any, filters: Any) -> None:
    """ngff-zarr's rule: the chain is the ``bytes`` codec plus one compressor; filters
    and another serializer (or big-endian bytes) raise ``ValueError``."""
    if filters not in (None, (), []):
        raise ArgumentError("filters are not supported: only a bytes serializer plus "
                            "compressors are written; "
                            "write the store with metadata_only=True and fill it with a "
                            "writer that implements filters")
    if serializer in (None, "auto"):
        return
    if isinstance(serializer, Mapping):
        name = str(serializer.get("name", ""))
        endian = str((serializer.get("configuration") or {}).get("endian", "little"))
    else:
        name = type(serializer).__name__.lower()
        endian = str(getattr(serializer, "endian", "little"))
    if "bytes" not in name:
        raise ArgumentError(f"serializer: {serializer!r} is not supported (a serializer "
                            "other than the bytes codec); only the little-endian bytes "
                            "codec is written")
    if "big" in endian:
        raise ArgumentError(f"serializer: {serializer!r} is not supported (endian='big'); "
                            "only the little-endian bytes codec is written")


def to_ngff_zarr(
    store: Any,
    multiscales: Multiscales,
    version: str | None = None,
    overwrite: bool | str = True,
    use_tensorstore: bool = False,
    chunk_store: Any = None,
    progress: Any = None,
    chunks_per_shard: int | Mapping[str, int] | None = None,
    scale_strategy: str = "pad",
    metadata_only: bool = False,
    start_level: int = 0,
    consolidate_metadata: bool = True,
    *,
    compressor: Any = None,
    compressors: Any = None,
    serializer: Any = None,
    filters: Any = None,
    codec: str = "zstd",
    codec_level: int | None = None,
    resume: bool = False,
    memory_limit: int | str | None = None,
    device: str = "auto",
    omero: dict | bool | None = None,
    labels: Mapping[str, Any] | None = None,
    client: Any = None,
    storage_options: Mapping[str, Any] | None = None,
    recompress: bool = False,
    **kwargs: Any,
) -> None:
    """Compute and write every level of ``multiscales`` to an OME-Zarr store.

    The positional parameters are ngff-zarr 0.50's, in its order; ours (``codec``
    on) are keyword-only.

    Parameters
    ----------
    store : str, pathlib.Path, zarr store or fsspec URL
        Where to write (anything ``zarr.open_group`` accepts; ``.ozx``: a zip).
    multiscales : Multiscales
        From :func:`to_multiscales` or :func:`from_ngff_zarr`, possibly edited:
        each level is written as ``images[k].data`` holds it, with its dask
        chunks, at ``metadata.datasets[k].path``. An RFC-5 transformation instead
        (ngff-zarr 0.50's form) is stored alone in an OME-Zarr 0.6 group
        (:mod:`ngff_gpu.io.transform_store`; the other parameters do not apply). An
        :class:`~ngff_gpu.io.scene.NgffScene` (ours or ngff-zarr's) is written to a
        local directory at 0.6 or 0.9.dev1: ``ome.scene`` in the root group and each
        image below its path with this call's options (:mod:`ngff_gpu.io.scene_write`).
    version : {"0.5", "0.4", "0.6", "0.9.dev1"}
        OME-Zarr version (None: 0.5 for an image, 0.6 for a transformation or a scene): 0.5, 0.6 and
        0.9.dev1 write Zarr v3 (``dimension_names``, optional sharding; 0.6 with RFC-5
        coordinate systems; 0.9.dev1 is 0.6 with RFC-3 axes: any count, names, types and
        order), 0.4 writes Zarr v2. Axes a version cannot hold (RFC-3 axes, or a channel
        after space, below 0.9.dev1) raise :class:`DimsError` naming the rule before
        anything is written.
    overwrite : bool or "in-place"
        True: replace an existing store. A local store is replaced atomically:
        the new one is written beside it (``.<name>.ngff-gpu-tmp-<pid>``) and
        swapped in only when complete, so a failure leaves the old one as it
        was. Stores without rename (``MemoryStore``, object stores) refuse to
        replace a complete OME-Zarr unless ``overwrite="in-place"`` (delete it,
        then write). False: an existing store raises :class:`StoreExistsError`.
    use_tensorstore : bool
        Accepted for ngff-zarr's signature (deprecated there); no effect here: chunks
        are always encoded by the Rust ``zarrs`` pipeline or zarr-python.
    chunk_store : None
        Not supported (as in ngff-zarr 0.50): anything but None raises ``TypeError``.
    progress : bool or object
        Show a rich progress bar (any true value, e.g. ngff-zarr's progress object).
    chunks_per_shard : int or dict, optional
        Chunks per shard along each spatial dim (0.5/0.6 only; labels too).
    scale_strategy : {"pad", "exact"}
        Accepted for ngff-zarr's signature; both write what "exact" means there: each
        level has the shape the metadata describes (``floor(n / f)`` per step).
    metadata_only : bool
        Create every array (shape, dtype, chunks, shards, codecs) and write the OME
        metadata, but compute and write no pixels.
    start_level : int
        Write only the levels from ``start_level`` on (needs ``overwrite=False``): the
        levels below it must be in the store with the shape and dtype the multiscales
        describes; they are read, never rewritten, and the first level written is
        computed from the last of them as stored (as ngff-zarr does). Root attributes
        are kept; the levels from ``start_level`` on that the store holds are replaced.
        In place: the root lists only the kept levels until the new ones are written,
        so a failed append leaves a readable store (see :mod:`ngff_gpu.io.append`).
    consolidate_metadata : bool
        Write consolidated metadata after the OME metadata (default True, as ngff-zarr).
    compressor, compressors : codec, optional
        Zarr v2 ``compressor`` / Zarr v3 ``compressors`` for every array (instead of
        ``codec``/``codec_level``): one codec or a chain; a ``BytesCodec`` in it is the
        serializer and dropped; in Zarr v3 a numcodecs Blosc, Zstd or GZip becomes its
        v3 codec (:func:`ngff_gpu.io.codecs.user_compressors`), as ngff-zarr reads them.
    serializer, filters : optional
        As ngff-zarr: only the little-endian ``bytes`` serializer and no filters are
        accepted (others raise ``ValueError``).
    codec, codec_level : str, int
        Compressor by name (see :mod:`ngff_gpu.io.codecs`).
    resume : bool
        Continue an interrupted write of the same plan, skipping finished bricks.
    memory_limit : int or str, optional
        Host bytes for bricks in flight and the read cache of decoded source
        chunks that later bricks still need (default 1 GiB).
    device : {"auto", "cpu", "cuda"}
        Compute backend; device inputs always compute on the device.
    omero : dict or True, optional
        OME ``omero`` display metadata; True computes windows from the data (default:
        ``multiscales.metadata.omero`` when set).
    labels : dict, optional
        ``{name: array or NgffImage}`` integer label images of the image's level-0
        shape and dims, written under ``labels/`` (MODE), all checked first.
    client : distributed.Client or False, optional
        Run bricks as tasks on this client (default: the active client, if any;
        False: compute in this process even when a client is active). An
        in-process store with worker processes raises :class:`StoreUnreachableError`.
    storage_options : dict, optional
        For a URL store (``s3://``, ``gs://``...): fsspec's options (``{"anon": False,
        "client_kwargs": {...}}``...) plus ``"retry"``, our retry policy (``attempts``,
        ``backoff``, ``max_backoff``, ``timeout``; docs/design.md, "Remote stores").
        Every write and read of the store is retried by that policy. Ignored for
        local paths and store objects.
    **kwargs
        None is taken: any other keyword raises ``TypeError`` (ngff-zarr's migration
        messages for its removed ``enabled_rfcs`` and for ``chunks``, Python's otherwise),
        before anything is written.
    recompress : bool
        Encode every level. By default a level read from a Zarr array whose chunks,
        data type and codecs are those the level is written with is copied as the
        stored chunks are, without decoding and encoding them again
        (:mod:`ngff_gpu.io.rawcopy`; the next level is still computed from it).

    Raises
    ------
    StoreExistsError, InvalidStoreError
        On an existing store without ``overwrite``/``resume``, or a plan that does
        not match the store being resumed.
    ArgumentError, ArgumentTypeError
        On a bad argument (also ``ValueError``/``TypeError``), before anything is written;
        among them a label image of another shape or dims (``DimsError``) or not of an
        integer dtype (``UnsupportedDtypeError``).
    KernelCompileError, BackendUnavailableError
        With ``device="cuda"`` when the CUDA backend fails (``"auto"`` falls back to
        NumPy with one :class:`~ngff_gpu.errors.BackendFallbackWarning`).
    StoreLockedError
        Another live process is writing the same local store (named in the message).
    DiskFullError
        The file system filled up ("no space left on device", with the path); a
        replacement's temporary is deleted and the old store is as it was.
    StoreUnreachableError
        An in-process store (``MemoryStore``) with ``dask.distributed`` worker processes.
    """
    import warnings

    if use_tensorstore:
        warnings.warn("use_tensorstore has no effect in ngff_gpu (deprecated in ngff-zarr "
                      "0.50, which uses its zarrista backend instead; ours encodes chunks "
                      "with zarrs or zarr-python)", DeprecationWarning, stacklevel=2)
    refuse_keywords(kwargs)
    if chunk_store is not None:
        raise ArgumentTypeError("chunk_store is no longer supported (ngff-zarr 0.50 dropped "
                                "it): chunks and metadata are always written to the same "
                                "local directory store, or to the same store object or URL "
                                "that `store` names")
    if scale_strategy not in ("pad", "exact"):
        raise ArgumentError(f"scale_strategy must be 'pad' or 'exact', got {scale_strategy!r}")
    _check_chain(serializer, filters)
    if is_transformation(multiscales):
        write_transformation(store, multiscales, version, overwrite=bool(overwrite))
        return
    if is_scene(multiscales):
        unused = [k for k, v in (("labels", labels), ("omero", omero), ("resume", resume),
                                 ("storage_options", storage_options)) if v]
        if unused:
            raise ArgumentError(f"{', '.join(unused)}: not available for a scene (set them "
                                "on each image, or write the images one by one)")
        others = {"compressor": compressor, "compressors": compressors, "codec": codec,
                  "codec_level": codec_level, "chunks_per_shard": chunks_per_shard,
                  "progress": progress, "memory_limit": memory_limit, "device": device,
                  "client": client, "recompress": recompress,
                  "metadata_only": metadata_only, "start_level": start_level}
        write_scene(store, multiscales, to_ngff_zarr, version, overwrite=bool(overwrite),
                    consolidate_metadata=consolidate_metadata, **others)
        return
    version = "0.5" if version is None else getattr(version, "value", version)
    if not isinstance(version, str):
        raise ArgumentError(f"version must be a string such as '0.5', got {version!r}")
    given = compressors if compressors is not None else compressor
    options = {"version": version, "chunks_per_shard": chunks_per_shard, "codec": codec,
               "codec_level": codec_level, "memory_limit": memory_limit, "device": device,
               "progress": bool(progress), "omero": omero, "labels": labels,
               "client": client, "compressors": given, "metadata_only": bool(metadata_only),
               "consolidate": bool(consolidate_metadata)}
    # (a .ozx store is staged as a directory, then zipped, by write_multiscales)
    write_multiscales(store, multiscales, overwrite=overwrite, resume=resume,
                      storage_options=storage_options, recompress=recompress,
                      start_level=start_level, **options)


def refuse_keywords(kwargs: Mapping[str, Any]) -> None:
    """Refuse any keyword :func:`to_ngff_zarr` does not take.

    Raises
    ------
    ArgumentTypeError
        (a ``TypeError``) naming the first one: for ``enabled_rfcs`` (removed in
        ngff-zarr 0.50) and ``chunks`` (set by ``to_multiscales``) with ngff-zarr's
        migration advice, else as Python words an unexpected keyword.
    """
    if "enabled_rfcs" in kwargs:
        raise ArgumentTypeError(
            "to_ngff_zarr() no longer accepts 'enabled_rfcs' (removed in ngff-zarr 0.50): "
            "RFC-4 anatomical orientation is written whenever it is present. Set "
            "NgffImage.axes_orientations, or pass orientation= to to_multiscales()")
    if "chunks" in kwargs:
        raise ArgumentTypeError(
            "to_ngff_zarr() does not accept 'chunks': the stored chunk shape comes from the "
            "dask chunking of the images. Set it with to_multiscales(..., chunks=...), or "
            "rechunk NgffImage.data before writing; chunks_per_shard sets sharding")
    if kwargs:
        raise ArgumentTypeError("to_ngff_zarr() got an unexpected keyword argument "
                                f"{next(iter(kwargs))!r}")


#: ngff-zarr 0.50's name of :func:`to_ngff_zarr`.
to_ome_zarr = to_ngff_zarr
STORE_IO["write"] = to_ome_zarr
