"""Label images under ``labels/`` (image-label metadata), written with MODE."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import zarr

from ngff_gpu.compute.methods import Methods
from ngff_gpu.levels.build import to_multiscales
from ngff_gpu.model.image import NgffImage, to_ngff_image
from ngff_gpu.model.multiscales import Multiscales


def write_labels(root: zarr.Group, labels: Mapping[str, Any], parent: Multiscales, version: str,
                 codec: str, codec_level: int | None, budget: int, device: str,
                 write: Callable[..., None]) -> None:
    """Write each label image as a multiscale image of its own under ``labels/<name>``.

    The label pyramid uses the parent's factors and chunks with MODE (most
    frequent label), so label boundaries never blur; its metadata carries
    ``image-label`` with ``source.image = "../../"``. ``write`` is the writer that
    writes each label pyramid (the caller's ``to_ngff_zarr``, passed in so that this
    module does not import the writer back).
    """
    img0 = parent.images[0]
    group = root.require_group("labels")
    names = []
    for name, data in labels.items():
        image = data if isinstance(data, NgffImage) else to_ngff_image(
            data, dims=img0.dims, scale=img0.scale, translation=img0.translation, name=name,
            axes_units=img0.axes_units)
        if tuple(image.data.shape) != tuple(img0.data.shape):
            raise ValueError(f"label image {name!r} has shape {image.data.shape}, "
                             f"the image has {img0.data.shape}")
        factors = [dict(lv.factors) for lv in parent.levels[1:]]
        ms = to_multiscales(image, scale_factors=factors, chunks=parent.chunks,
                            method=Methods.MODE)
        # Flat paths, the ome-zarr convention for label images (ome-zarr-models 1.7
        # cannot validate nested dataset paths inside labels/).
        for k, ds in enumerate(ms.metadata.datasets):
            ds.path = str(k)
        write(_sub_store(root, name), ms, version=version, codec=codec, codec_level=codec_level,
                     memory_limit=budget, device=device)
        sub = zarr.open_group(_sub_store(root, name), mode="r+")
        label_meta = {"version": version, "source": {"image": "../../"}}
        attrs = sub.attrs.asdict()
        if version == "0.5":
            attrs["ome"]["image-label"] = {"source": {"image": "../../"}}
        else:
            attrs["image-label"] = label_meta
        sub.attrs.put(attrs)
        names.append(name)
    if version == "0.5":
        group.attrs.put({"ome": {"version": "0.5", "labels": names}})
    else:
        group.attrs.put({"labels": names})


def _sub_store(root: zarr.Group, name: str) -> Any:
    from zarr.storage import StorePath

    prefix = f"{root.path}/" if root.path else ""
    return StorePath(root.store, f"{prefix}labels/{name}")
