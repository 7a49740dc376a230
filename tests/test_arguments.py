"""Every bad argument of the public API raises a typed error that is also the matching
builtin, names the argument, and comes before anything is written."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngff_gpu as nz

X3 = np.arange(16 * 16 * 16, dtype=np.uint8).reshape(16, 16, 16)
X2 = X3[0]


@pytest.fixture(scope="module")
def ms():
    return nz.to_multiscales(nz.to_ngff_image(X3), scale_factors=[2], chunks=8)


def _image(**kw):
    return lambda: nz.to_ngff_image(X3, **kw)


def _multiscales(**kw):
    return lambda: nz.to_multiscales(nz.to_ngff_image(X3), **{"scale_factors": [2], **kw})


def _downsample(**kw):
    return lambda: nz.downsample(X3, **{"factors": 2, **kw})


def _pyramid(**kw):
    return lambda: nz.pyramid(X3, **{"scale_factors": [2], **kw})


# (call, builtin, word the message must contain)
CASES = {
    # to_ngff_image
    "image dims wrong count": (_image(dims=["y", "x"]), ValueError, "dims"),
    "image dims repeated": (_image(dims=["x", "x", "y"]), ValueError, "dims"),
    "image dims unknown": (_image(dims=["q", "y", "x"]), ValueError, "dims"),
    "image dims not names": (_image(dims=[1, 2, 3]), TypeError, "dims"),
    "image dims an int": (_image(dims=3), TypeError, "dims"),
    "image scale NaN": (_image(scale={"x": math.nan}), ValueError, "scale"),
    "image scale inf": (_image(scale=[1.0, 1.0, math.inf]), ValueError, "scale"),
    "image scale zero": (_image(scale={"z": 0.0}), ValueError, "scale"),
    "image scale negative": (_image(scale={"y": -1.0}), ValueError, "scale"),
    "image scale a string": (_image(scale={"y": "1"}), TypeError, "scale"),
    "image scale a scalar": (_image(scale=2.0), TypeError, "scale"),
    "image scale wrong length": (_image(scale=[1.0, 2.0]), ValueError, "scale"),
    "image translation NaN": (_image(translation={"x": math.nan}), ValueError, "translation"),
    "image translation -inf": (_image(translation=[0, 0, -math.inf]), ValueError, "translation"),
    "image translation unknown dim": (_image(translation={"t": 1.0}), ValueError, "translation"),
    "image name climbing out": (_image(name="a/../b"), ValueError, "name"),
    "image name absolute": (_image(name="/a"), ValueError, "name"),
    "image name empty part": (_image(name="a//b"), ValueError, "name"),
    "image name trailing slash": (_image(name="a/"), ValueError, "name"),
    "image name dot": (_image(name="."), ValueError, "name"),
    "image name empty": (_image(name=""), ValueError, "name"),
    "image name not a string": (_image(name=3), TypeError, "name"),
    "image axes_units unknown dim": (_image(axes_units={"t": "second"}), ValueError, "axes_units"),
    "image axes_units not a dict": (_image(axes_units="micrometer"), TypeError, "axes_units"),
    "image data of strings": (lambda: nz.to_ngff_image(np.array([["a"]])), TypeError, "data"),
    # to_multiscales
    "chunks a string": (_multiscales(chunks="16"), TypeError, "chunks"),
    "chunks a float": (_multiscales(chunks=2.5), TypeError, "chunks"),
    "chunks float in tuple": (_multiscales(chunks=(16.5, 16, 16)), TypeError, "chunks"),
    "chunks wrong length": (_multiscales(chunks=(16, 16)), ValueError, "chunks"),
    "chunks zero": (_multiscales(chunks=0), ValueError, "chunks"),
    "chunks unknown dim": (_multiscales(chunks={"t": 1}), ValueError, "chunks"),
    "chunks bool": (_multiscales(chunks=True), TypeError, "chunks"),
    "scale_factors None": (_multiscales(scale_factors=None), TypeError, "scale_factors"),
    "scale_factors a string": (_multiscales(scale_factors="2"), TypeError, "scale_factors"),
    "scale_factors a float": (_multiscales(scale_factors=2.5), TypeError, "scale_factors"),
    "scale_factors None level": (_multiscales(scale_factors=[None]), TypeError, "scale_factors"),
    "scale_factors fractional": (_multiscales(scale_factors=[2.5]), ValueError, "scale_factors"),
    "scale_factors zero": (_multiscales(scale_factors=[0]), ValueError, "scale_factors"),
    "scale_factors NaN": (_multiscales(scale_factors=[math.nan]), ValueError, "scale_factors"),
    "scale_factors on c": (lambda: nz.to_multiscales(
        nz.to_ngff_image(X3, dims=["c", "y", "x"]), scale_factors=[{"c": 2}]),
        ValueError, "scale_factors"),
    "method unknown": (_multiscales(method="bicubic"), ValueError, "method"),
    "method not a name": (_multiscales(method=7), ValueError, "method"),
    # downsample / pyramid: dims checked as to_ngff_image checks them
    "downsample dims wrong count": (_downsample(dims=["y", "x"]), ValueError, "dims"),
    "downsample dims repeated": (_downsample(dims=["x", "x", "y"]), ValueError, "dims"),
    "downsample dims unknown": (_downsample(dims=["q", "y", "x"]), ValueError, "dims"),
    "downsample 2-D dims repeated": (lambda: nz.downsample(X2, 2, dims=["x", "x"]),
                                     ValueError, "dims"),
    "downsample 2-D dims unknown": (lambda: nz.downsample(X2, 2, dims=["q", "x"]),
                                    ValueError, "dims"),
    "downsample factors None": (_downsample(factors=None), TypeError, "factors"),
    "downsample factors a string": (_downsample(factors="2"), TypeError, "factors"),
    "downsample factors wrong length": (_downsample(factors=[2, 2]), ValueError, "factors"),
    "downsample factors fractional": (_downsample(factors=1.5), ValueError, "factors"),
    "downsample method unknown": (_downsample(method="bicubic"), ValueError, "method"),
    "downsample float MODE": (lambda: nz.downsample(X3.astype(np.float32), 2, method="mode"),
                              TypeError, "MODE"),
    "pyramid dims wrong count": (_pyramid(dims=["y", "x"]), ValueError, "dims"),
    "pyramid scale_factors None": (_pyramid(scale_factors=None), TypeError, "scale_factors"),
    "pyramid scale_factors a float": (_pyramid(scale_factors=2.5), TypeError, "scale_factors"),
    "pyramid method unknown": (_pyramid(method="cubic"), ValueError, "method"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_argument_raises_a_typed_error_naming_it(name):
    call, builtin, word = CASES[name]
    with pytest.raises(nz.NgffGpuError) as info:
        call()
    assert isinstance(info.value, builtin), f"{type(info.value).__mro__} is not a {builtin}"
    assert word in str(info.value), str(info.value)


WRITE_CASES = {
    "version unknown": ({"version": "0.3"}, ValueError, "version"),
    "version a number": ({"version": 0.5}, ValueError, "version"),
    "codec unknown": ({"codec": "snappy"}, ValueError, "codec"),
    "codec not a string": ({"codec": 3}, TypeError, "codec"),
    "codec_level out of range": ({"codec_level": 99}, ValueError, "codec_level"),
    "codec_level a string": ({"codec_level": "3"}, TypeError, "codec_level"),
    "memory_limit zero": ({"memory_limit": 0}, ValueError, "memory_limit"),
    "memory_limit negative": ({"memory_limit": -5}, ValueError, "memory_limit"),
    "memory_limit NaN": ({"memory_limit": math.nan}, ValueError, "memory_limit"),
    "memory_limit unparsable": ({"memory_limit": "lots"}, ValueError, "memory_limit"),
    "memory_limit too small": ({"memory_limit": 1000}, ValueError, "memory_limit"),
    "memory_limit a list": ({"memory_limit": [1]}, TypeError, "memory_limit"),
    "device unknown": ({"device": "tpu"}, ValueError, "device"),
    "device not a string": ({"device": 0}, TypeError, "device"),
    "chunks_per_shard on 0.4": ({"chunks_per_shard": 2, "version": "0.4"}, ValueError,
                                "chunks_per_shard"),
    "chunks_per_shard zero": ({"chunks_per_shard": 0}, ValueError, "chunks_per_shard"),
    "chunks_per_shard a string": ({"chunks_per_shard": "2"}, TypeError, "chunks_per_shard"),
    "chunks_per_shard unknown dim": ({"chunks_per_shard": {"t": 2}}, ValueError,
                                     "chunks_per_shard"),
    "omero a list": ({"omero": [1]}, TypeError, "omero"),
}


@pytest.mark.parametrize("name", sorted(WRITE_CASES))
def test_bad_write_argument_raises_before_anything_is_written(tmp_path, ms, name):
    kwargs, builtin, word = WRITE_CASES[name]
    out = tmp_path / "out.ome.zarr"
    with pytest.raises(nz.NgffGpuError) as info:
        nz.to_ngff_zarr(out, ms, **kwargs)
    assert isinstance(info.value, builtin), f"{type(info.value).__mro__} is not a {builtin}"
    assert word in str(info.value), str(info.value)
    assert not out.exists()


def test_to_ngff_zarr_wants_a_multiscales(tmp_path):
    with pytest.raises(nz.ArgumentTypeError, match="multiscales"):
        nz.to_ngff_zarr(tmp_path / "x", nz.to_ngff_image(X3))


@pytest.mark.parametrize("bad", ["missing", "file"])
def test_reading_what_is_not_a_store_is_invalid_store_error(tmp_path, bad):
    path = tmp_path / "x.ome.zarr"
    if bad == "file":
        path.write_text("not zarr")
    for call in (nz.from_ngff_zarr, nz.validate_store):
        with pytest.raises(nz.InvalidStoreError) as info:
            call(path)
        assert "x.ome.zarr" in str(info.value)


def test_errors_are_both_package_and_builtin_errors():
    assert issubclass(nz.DimsError, nz.ArgumentError)
    assert issubclass(nz.ArgumentError, ValueError) and issubclass(nz.ArgumentError, nz.NgffGpuError)
    assert issubclass(nz.ArgumentTypeError, TypeError)
    assert issubclass(nz.UnsupportedDtypeError, TypeError)
    assert issubclass(nz.ScaleFactorError, ValueError)
    assert issubclass(nz.InvalidStoreError, ValueError)


def test_edited_image_placement_is_checked():
    image = nz.to_ngff_image(X3)
    image.scale["x"] = math.nan
    with pytest.raises(nz.ArgumentError, match="scale"):
        nz.to_multiscales(image, [2])
    image.scale["x"], image.translation["y"] = 1.0, math.inf
    with pytest.raises(nz.ArgumentError, match="translation"):
        nz.to_multiscales(image, [2])


@pytest.mark.parametrize("kind, value", [("scale", math.nan), ("scale", -1.0),
                                         ("translation", math.inf)])
def test_edited_metadata_that_json_cannot_hold_fails_before_writing(tmp_path, kind, value):
    ms = nz.to_multiscales(nz.to_ngff_image(X3), scale_factors=[2], chunks=8)
    t = ms.metadata.datasets[1].coordinateTransformations[0 if kind == "scale" else 1]
    getattr(t, kind)[2] = value
    out = tmp_path / "out.ome.zarr"
    with pytest.raises(nz.ArgumentError, match=rf"datasets\[1\].*{kind}"):
        nz.to_ngff_zarr(out, ms)
    assert not out.exists()


# -- hypothesis: any value of an argument is accepted or refused with a typed error -------

ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=True)
    | st.text(alphabet="xyzc0123456789.", max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner, inner)
    | st.dictionaries(st.sampled_from(["t", "c", "z", "y", "x", "q"]), inner, max_size=3),
    max_leaves=6,
)


def _accepted_or_typed(call, param):
    try:
        call()
    except nz.NgffGpuError as exc:
        assert isinstance(exc, ValueError | TypeError), type(exc).__mro__
        assert param in str(exc), str(exc)


@settings(max_examples=150, deadline=None)
@given(value=ANY)
def test_any_chunks(value):
    _accepted_or_typed(lambda: nz.to_multiscales(X3, scale_factors=[2], chunks=value), "chunks")


@settings(max_examples=150, deadline=None)
@given(value=ANY)
def test_any_scale_factors(value):
    _accepted_or_typed(lambda: nz.to_multiscales(X3, scale_factors=value, chunks=8), "factor")


@settings(max_examples=150, deadline=None)
@given(value=ANY, param=st.sampled_from(["scale", "translation"]))
def test_any_scale_or_translation(value, param):
    _accepted_or_typed(lambda: nz.to_ngff_image(X3, **{param: value}), param)


@settings(max_examples=100, deadline=None)
@given(value=ANY)
def test_any_dims_of_downsample(value):
    _accepted_or_typed(lambda: nz.downsample(X3, 2, dims=value), "dims")
