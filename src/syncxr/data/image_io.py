"""Benchmark images of any published format (PNG 8/16 bit, JPEG, DICOM) as uint8 1xHxW tensors.

`load_image` dispatches on the file suffix: `.dcm` goes through pydicom (imported only then),
everything else through PIL (`syncxr.data.images.load_gray`). Every failure names the file.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import load_gray

DICOM_SUFFIXES = (".dcm", ".dicom")


def _voi_lut(ds) -> bool:
    """Whether the file has a VOI LUT that pydicom's `apply_voi_lut` uses (it needs both fields)."""
    voi = ds.get("VOILUTSequence")
    return bool(voi) and None not in (voi[0].get("LUTDescriptor"), voi[0].get("LUTData"))


def _value_range(ds) -> tuple[float, float]:
    """The range the VOI LUT (or, without one, the Modality LUT) maps stored values into, as pydicom's
    `apply_windowing` computes it (PS3.3 C.11.2.1.2): the stored range after rescale, or a LUT's.
    Not sorted: under a negative rescale slope the first is the larger (stored 0's rescaled value)."""
    if _voi_lut(ds):
        return 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    else:
        bits = int(ds.BitsStored)
        lo, hi = (
            (0.0, 2.0**bits - 1) if int(ds.PixelRepresentation) == 0 else (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        )
        if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
            lo, hi = lo * slope + intercept, hi * slope + intercept
    return lo, hi


def display_pixels(ds, arr: np.ndarray) -> np.ndarray:
    """Stored pixel values -> the uint8 image a viewer shows: Modality LUT (RescaleSlope/Intercept or
    a LUT), then the VOI LUT or window the file carries (the first, if several), that window mapped
    to 0-255, then MONOCHROME1 inverted (low values are bright). Without a VOI LUT or window the
    whole stored range maps to 0-255 (a 16-bit image written as v * 257 reads back as v)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut  # noqa: PLC0415

    # Both read before apply_voi_lut, which may rewrite ds's value types.
    lo, hi = _value_range(ds)
    windowed = not _voi_lut(ds) and None not in (ds.get("WindowCenter"), ds.get("WindowWidth"))
    values = apply_voi_lut(apply_modality_lut(arr, ds), ds, index=0, prefer_lut=True).astype(np.float64)
    if hi < lo and not windowed:
        # Rescaled values passed through under a negative slope: the larger value is the brighter.
        lo, hi = hi, lo
    # A window maps its bottom to pydicom's first range value and its top to the second, also when the
    # first is the larger (a negative slope): (values - lo) / (hi - lo) is 0 at the bottom either way.
    span = hi - lo if hi != lo else 1e-12
    out = np.rint((values - lo) / span * 255.0).clip(0, 255).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        out = 255 - out
    return out


def load_dicom(path: str | Path) -> torch.Tensor:
    """A single-frame grayscale DICOM as uint8 1xHxW, as displayed (see `display_pixels`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    import pydicom  # noqa: PLC0415 - only benchmarks stored as DICOM need it
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        if arr.ndim != 2:
            raise ValueError(f"expected one grayscale frame, got pixel array of shape {arr.shape}")
        out = display_pixels(ds, arr)
    except (
        InvalidDicomError,
        AttributeError,
        KeyError,
        IndexError,
        OSError,
        ValueError,
        TypeError,
        RuntimeError,
        NotImplementedError,
    ) as e:  # pydicom: no plugin decodes this (compressed) pixel data
        raise ValueError(f"image {path} could not be decoded as DICOM: {e}") from e
    return torch.from_numpy(np.ascontiguousarray(out)).unsqueeze(0)


def load_image(path: str | Path) -> torch.Tensor:
    """uint8 tensor 1xHxW of a PNG (8 or 16 bit), JPEG or DICOM file."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return load_dicom(path)
    return load_gray(path)


def write_dicom(path: str | Path, image: np.ndarray, patient_id: str = "phantom") -> None:
    """Writes a uint8 (8-bit) or uint16 (16-bit) grayscale array as a Secondary Capture DICOM file."""
    import pydicom  # noqa: PLC0415
    from pydicom.dataset import FileMetaDataset  # noqa: PLC0415
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: PLC0415

    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_dicom needs a 2-D uint8 or uint16 array, got {image.dtype} {image.shape}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.Modality, ds.BodyPartExamined, ds.ViewPosition = patient_id, "CR", "CHEST", "PA"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = 8 * image.dtype.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = np.ascontiguousarray(image).tobytes()
    ds.save_as(path, enforce_file_format=True)


def png_data_url(image: np.ndarray) -> str:
    """An 8-bit image as a `data:image/png;base64,...` URL (how OpenAI-compatible vision chat
    endpoints take images)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
