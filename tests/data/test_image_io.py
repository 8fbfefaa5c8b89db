"""DICOM as displayed: Modality LUT, VOI LUT or window, then 0-255, then MONOCHROME1 inverted.
Expected values are worked out by hand from PS3.3 C.11.2.1.2 (LINEAR window):
  y = 0 if x <= c - 0.5 - (w - 1) / 2;  255 if x > c - 0.5 + (w - 1) / 2;
  else ((x - (c - 0.5)) / (w - 1) + 0.5) * 255, rounded."""

from __future__ import annotations

import numpy as np
import pydicom

from syncxr.data.image_io import load_image, write_dicom


def dicom(path, pixels: np.ndarray, **attributes):
    """A one-row Secondary Capture DICOM of `pixels` with `attributes` set (written by pydicom)."""
    write_dicom(path, pixels)
    ds = pydicom.dcmread(path)
    for k, v in attributes.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_16_bit_monochrome1_with_a_window_over_part_of_its_range(tmp_path):
    # Window centre 1024, width 513: values up to 767 are black before inversion, from 1280 up white.
    x = np.array([[0, 767, 896, 1024, 1152, 1279, 1280, 65535]], dtype=np.uint16)
    path = dicom(tmp_path / "m1.dcm", x, PhotometricInterpretation="MONOCHROME1", WindowCenter=1024,
                 WindowWidth=513)
    # Before inversion: 0, 0, (128.5/512)*255=64.0 -> 64, (256.5/512)*255=127.75 -> 128,
    # (384.5/512)*255=191.49 -> 191, (511.5/512)*255=254.75 -> 255, 255, 255; MONOCHROME1: 255 - y.
    assert load_image(path)[0].numpy().tolist() == [[255, 255, 191, 127, 64, 0, 0, 0]]
    # Shifting out the low 8 bits (the old reading) gives 1024 >> 8 = 4 -> 251: almost white.


def test_rescale_slope_and_intercept_come_before_the_window(tmp_path):
    # 12 bits stored, value = 2 x - 1000 (e.g. HU), window centre 0, width 2001 in those units.
    x = np.array([[0, 250, 500, 750, 1000, 4095]], dtype=np.uint16)
    path = dicom(tmp_path / "rescale.dcm", x, BitsStored=12, HighBit=11, RescaleSlope=2, RescaleIntercept=-1000,
                 WindowCenter=0, WindowWidth=2001)
    # v = -1000, -500, 0, 500, 1000, 7190;  ((v + 0.5) / 2000 + 0.5) * 255 = 0.06, 63.81, 127.56, 191.31;
    # v = 1000 > 999.5 and 7190: 255.
    assert load_image(path)[0].numpy().tolist() == [[0, 64, 128, 191, 255, 255]]
    # Without a window the rescaled range [-1000, 7190] maps to 0-255: v = 0 (x = 500) -> 31.14 -> 31.
    plain = dicom(tmp_path / "plain.dcm", x, BitsStored=12, HighBit=11, RescaleSlope=2, RescaleIntercept=-1000)
    assert load_image(plain)[0].numpy().tolist() == [[0, 16, 31, 47, 62, 255]]


def test_a_voi_lut_sequence_is_applied(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    x = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 8]  # 4 entries, first input value 0, 8-bit output
    lut.LUTData = np.array([255, 0, 200, 100], dtype="<u2").tobytes()  # OW: 16-bit words
    path = dicom(tmp_path / "lut.dcm", x, VOILUTSequence=Sequence([lut]))
    assert load_image(path)[0].numpy().tolist() == [[255, 0, 200, 100]]
