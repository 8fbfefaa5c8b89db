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


def to_uint8(arr: np.ndarray, bits_stored: int | None = None) -> np.ndarray:
    """Integer pixel data of `bits_stored` bits (default: the dtype's width) scaled to 8 bit by
    dropping the low bits, so a 16-bit image written as v * 257 reads back exactly as v."""
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"pixel data of dtype {arr.dtype} is not integer")
    bits = bits_stored or 8 * arr.dtype.itemsize
    arr = arr.astype(np.int64)
    if bits > 8:
        arr = arr >> (bits - 8)
    return arr.clip(0, 255).astype(np.uint8)


def load_dicom(path: str | Path) -> torch.Tensor:
    """A single-frame grayscale DICOM as uint8 1xHxW (MONOCHROME1 inverted, BitsStored scaled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    import pydicom  # noqa: PLC0415 - only benchmarks stored as DICOM need it
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except (InvalidDicomError, AttributeError, KeyError, OSError, ValueError, TypeError) as e:
        raise ValueError(f"image {path} could not be decoded as DICOM: {e}") from e
    if arr.ndim != 2:
        raise ValueError(f"image {path}: expected one grayscale frame, got pixel array of shape {arr.shape}")
    out = to_uint8(arr, int(getattr(ds, "BitsStored", 8 * arr.dtype.itemsize)))
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        out = 255 - out  # MONOCHROME1: low values are bright
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
