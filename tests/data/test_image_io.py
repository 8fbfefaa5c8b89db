"""DICOM as displayed (PS3.3 C.11.2.1.2): Modality LUT (v = x * RescaleSlope + RescaleIntercept), then the
VOI LUT or window on v, its output range mapped to 0-255, then MONOCHROME1 inverted (255 - y). Each expected
value is worked out by hand from the standard; y is in 0-1 before the 0-255 scaling and rounding:
  LINEAR (c, w):       y = 0 if v <= c - 0.5 - (w - 1) / 2;  1 if v > c - 0.5 + (w - 1) / 2;
                       else (v - (c - 0.5)) / (w - 1) + 0.5
  LINEAR_EXACT (c, w): y = 0 if v <= c - w / 2;  1 if v > c + w / 2;  else (v - c) / w + 0.5
  SIGMOID (c, w):      y = 1 / (1 + exp(-4 (v - c) / w))
  no VOI LUT, no window: y = (v - min) / (max - min) over the range the stored bits can hold, rescaled
A window's output runs from the low end of the output range at its bottom to the high end at its top,
whatever the sign of the rescale slope."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from syncxr.data.image_io import load_image, write_dicom


def dicom(path, pixels: np.ndarray, **attributes):
    """A one-row Secondary Capture DICOM of `pixels` with `attributes` set (written by pydicom)."""
    write_dicom(path, pixels)
    ds = pydicom.dcmread(path)
    for k, v in attributes.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return path


def _voi_lut(entries: list[int], bits: int) -> Sequence:
    lut = Dataset()
    lut.LUTDescriptor = [len(entries), 0, bits]  # entries, first input value 0, bits per output value
    lut.LUTData = np.array(entries, dtype="<u2").tobytes()  # OW: 16-bit words
    return Sequence([lut])


U16 = np.uint16
TWELVE_BITS = {"BitsStored": 12, "HighBit": 11}
# 12 bits stored, v = 2 x - 1000 (e.g. HU): x = 0, 250, 500, 750, 1000, 4095 -> v = -1000, -500, 0, 500, 1000, 7190.
RESCALE = {**TWELVE_BITS, "RescaleSlope": 2, "RescaleIntercept": -1000}
# The same with v = 1000 - 2 x (a negative slope): v = 1000, 500, 0, -500, -1000, -7190.
NEGATIVE = {**TWELVE_BITS, "RescaleSlope": -2, "RescaleIntercept": 1000}
RESCALED_X = [0, 250, 500, 750, 1000, 4095]
WINDOW_16 = [0, 767, 896, 1024, 1152, 1279, 1280, 65535]  # around centre 1024, width 513

DISPLAY_CASES = {
    # 8 bits, no window: the stored range 0-255 is the output range, y * 255 = x.
    "monochrome2_no_window": ([0, 1, 127, 128, 254, 255], np.uint8, {}, [0, 1, 127, 128, 254, 255]),
    # The same inverted: 255 - x.
    "monochrome1_no_window": (
        [0, 1, 127, 128, 254, 255],
        np.uint8,
        {"PhotometricInterpretation": "MONOCHROME1"},
        [255, 254, 128, 127, 1, 0],
    ),
    # c 1024, w 513: v <= 767 -> 0, v > 1279.5 -> 255; 896: (128.5 / 512) * 255 = 64.0; 1024: 127.75 -> 128;
    # 1152: 191.49 -> 191; 1279: (511.5 / 512) * 255 = 254.75 -> 255.
    "monochrome2_window": (
        WINDOW_16,
        U16,
        {"WindowCenter": 1024, "WindowWidth": 513},
        [0, 0, 64, 128, 191, 255, 255, 255],
    ),
    # The same inverted (shifting out the low 8 bits, an old reading, gave 1024 >> 8 = 4 -> 251: almost white).
    "monochrome1_window": (
        WINDOW_16,
        U16,
        {"PhotometricInterpretation": "MONOCHROME1", "WindowCenter": 1024, "WindowWidth": 513},
        [255, 255, 191, 127, 64, 0, 0, 0],
    ),
    # Two windows (multi-valued): the first is used, as case monochrome2_window; the second would give all 0.
    "multi_valued_window": (
        WINDOW_16,
        U16,
        {
            "WindowCenter": [1024, 30000],
            "WindowWidth": [513, 1000],
            "WindowCenterWidthExplanation": ["FIRST", "SECOND"],
        },
        [0, 0, 64, 128, 191, 255, 255, 255],
    ),
    # c 0, w 2001 on v = -1000 ... 7190: -1000 -> (-999.5 / 2000 + 0.5) * 255 = 0.06 -> 0; -500 -> 63.81 -> 64;
    # 0 -> 127.56 -> 128; 500 -> 191.31 -> 191; 1000 > 999.5 and 7190: 255.
    "rescale_window": (
        RESCALED_X,
        U16,
        {**RESCALE, "WindowCenter": 0, "WindowWidth": 2001},
        [0, 64, 128, 191, 255, 255],
    ),
    # No window: v's range [-1000, 7190] (x = 0 ... 4095) maps to 0-255: (v + 1000) / 8190 * 255 =
    # 0, 15.57 -> 16, 31.14 -> 31, 46.70 -> 47, 62.27 -> 62, 255.
    "rescale_no_window": (RESCALED_X, U16, RESCALE, [0, 16, 31, 47, 62, 255]),
    # Negative slope, c 0, w 2001 on v = 1000, 500, 0, -500, -1000, -7190: the window acts on v, so the
    # values are those of rescale_window in reverse order: 255, 191, 128, 64, 0, 0 (a bright v stays bright).
    "negative_slope_window": (
        RESCALED_X,
        U16,
        {**NEGATIVE, "WindowCenter": 0, "WindowWidth": 2001},
        [255, 191, 128, 64, 0, 0],
    ),
    # The same shown MONOCHROME1: 255 - y.
    "negative_slope_window_monochrome1": (
        RESCALED_X,
        U16,
        {**NEGATIVE, "WindowCenter": 0, "WindowWidth": 2001, "PhotometricInterpretation": "MONOCHROME1"},
        [0, 64, 127, 191, 255, 255],
    ),
    # Negative slope, no window: v's range [-7190, 1000] maps to 0-255: (v + 7190) / 8190 * 255 = 255,
    # 239.43 -> 239, 223.86 -> 224, 208.30 -> 208, 192.73 -> 193, 0.
    "negative_slope_no_window": (RESCALED_X, U16, NEGATIVE, [255, 239, 224, 208, 193, 0]),
    # LINEAR_EXACT, c 1024, w 512: v <= 768 -> 0; v > 1280 -> 255; 896: (-128 / 512 + 0.5) * 255 = 63.75 -> 64;
    # 1000: 0.453125 * 255 = 115.55 -> 116; 1152: 191.25 -> 191; 1280: 1.0 -> 255.
    "linear_exact": (
        [0, 768, 896, 1000, 1152, 1280, 65535],
        U16,
        {"WindowCenter": 1024, "WindowWidth": 512, "VOILUTFunction": "LINEAR_EXACT"},
        [0, 0, 64, 116, 191, 255, 255],
    ),
    # SIGMOID, c 1024, w 512: 1 / (1 + exp(-4 (v - 1024) / 512)) * 255: 0 -> exp(8): 0.09 -> 0;
    # 768 -> exp(2): 30.40 -> 30; 896 -> exp(1): 68.57 -> 69; 1152 -> exp(-1): 186.43 -> 186;
    # 1280 -> exp(-2): 224.60 -> 225.
    "sigmoid": (
        [0, 768, 896, 1152, 1280],
        U16,
        {"WindowCenter": 1024, "WindowWidth": 512, "VOILUTFunction": "SIGMOID"},
        [0, 30, 69, 186, 225],
    ),
    # A VOI LUT (8-bit output, so y * 255 is the entry itself), used rather than the window the file also has.
    "voi_lut_sequence": (
        [0, 1, 2, 3],
        np.uint8,
        {"VOILUTSequence": _voi_lut([255, 0, 200, 100], 8), "WindowCenter": 1, "WindowWidth": 1},
        [255, 0, 200, 100],
    ),
}


@pytest.mark.parametrize("x, dtype, attributes, expected", DISPLAY_CASES.values(), ids=DISPLAY_CASES.keys())
def test_dicom_is_read_as_ps3_3_displays_it(tmp_path, x, dtype, attributes, expected):
    path = dicom(tmp_path / "image.dcm", np.array([x], dtype=dtype), **attributes)
    assert load_image(path)[0].numpy().tolist() == [expected]
