"""Section parsing of free-text MIMIC-CXR reports, fallbacks included."""

from __future__ import annotations

import pytest

from syncxr.data.report_sections import (
    ReportSections,
    choose_sections,
    clean,
    is_placeholder,
    normalize_section_name,
    parse_report,
    split_sections,
)

FULL = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 
 INDICATION:  ___F with new onset ascites  // eval for infection
 
 TECHNIQUE:  Chest PA and lateral
 
 COMPARISON:  None.
 
 FINDINGS: 
 
 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows. The
 cardiomediastinal silhouette is normal.
 
 IMPRESSION: 
 
 No acute cardiopulmonary process.
"""


def test_findings_and_impression_with_whitespace_collapsed():
    assert parse_report(FULL) == ReportSections(
        "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular opacities "
        "that most likely represent nipple shadows. The cardiomediastinal silhouette is normal.",
        "No acute cardiopulmonary process.",
    )


def test_sections_are_split_in_order_with_normalised_names():
    names = [s.name for s in split_sections(FULL)]
    assert names == ["preamble", "examination", "indication", "technique", "comparison", "findings", "impression"]
    # The title is not a section and not part of any text.
    assert "FINAL REPORT" not in "".join(s.text for s in split_sections(FULL))


@pytest.mark.parametrize(
    "header, name",
    [
        ("IMPRESSION", "impression"),
        ("CONCLUSION", "impression"),
        ("FINDINGS AND IMPRESSION", "impression"),
        ("FINDINGS/IMPRESSION", "impression"),
        ("IMPRESSON", "impression"),
        ("FINDING", "findings"),
        ("PA AND LATERAL VIEWS OF THE CHEST", "findings"),
        ("PORTABLE CHEST", "findings"),
        ("COMPARISONS", "comparison"),
        ("REASON FOR EXAMINATION", "indication"),
        ("CLINICAL HISTORY", "history"),
        ("ADDENDUM", "addendum"),
        ("WET READ", "wet read"),
        ("NOTIFICATION", "notification"),
    ],
)
def test_header_names_are_normalised(header, name):
    assert normalize_section_name(header) == name


def test_only_impression():
    text = """                                 FINAL REPORT
 INDICATION:  Intubated patient.
 
 COMPARISON:  ___.
 
 IMPRESSION:  Endotracheal tube terminates 4 cm above the carina.  No
 pneumothorax.
"""
    assert parse_report(text) == ReportSections(
        "", "Endotracheal tube terminates 4 cm above the carina. No pneumothorax."
    )


def test_only_findings_keeps_impression_empty():
    text = " FINAL REPORT\n INDICATION:  Cough.\n \n FINDINGS:  Lungs are clear.  Heart size is normal.\n"
    assert parse_report(text) == ReportSections("Lungs are clear. Heart size is normal.", "")


def test_last_sections_win_and_empty_ones_are_skipped():
    # A study-title header with no text of its own, then two IMPRESSIONs: the later read counts.
    text = """ FINAL REPORT
 CHEST, PA AND LATERAL:
 
 FINDINGS:  Mild cardiomegaly.
 
 IMPRESSION:  Preliminary read.
 
 IMPRESSION:  Mild cardiomegaly, no edema.
"""
    assert parse_report(text) == ReportSections("Mild cardiomegaly.", "Mild cardiomegaly, no edema.")


def test_no_findings_or_impression_falls_back_to_the_last_paragraph():
    text = """                                 FINAL REPORT
 CHEST RADIOGRAPH PERFORMED ON ___
 
 COMPARISON:  Prior exam from ___.
 
 CLINICAL HISTORY:  Cough, question pneumonia.
 
 Lungs are clear without focal consolidation.  Heart size
 normal.
 
 No pleural effusion.
"""
    assert parse_report(text) == ReportSections(
        "", "Lungs are clear without focal consolidation. Heart size normal. No pleural effusion."
    )


def test_report_without_headers_uses_its_text():
    assert parse_report("     FINAL REPORT\n Heart size normal.  Lungs clear.\n") == ReportSections(
        "", "Heart size normal. Lungs clear."
    )
    # With several paragraphs, the first (usually the exam title) is left out, as in MIT-LCP's parser.
    text = "     FINAL REPORT\n PA AND LATERAL CHEST ___\n \n Heart size normal.\n \n Lungs clear.\n"
    assert parse_report(text) == ReportSections("", "Heart size normal. Lungs clear.")


def test_comparison_is_the_last_resort_but_not_a_placeholder():
    written_in_comparison = (
        " FINAL REPORT\n EXAMINATION:  Chest.\n \n INDICATION:  Line placement.\n"
        " \n COMPARISON:  Compared to ___, the right PICC line now ends in the SVC.\n"
    )
    assert parse_report(written_in_comparison) == ReportSections(
        "", "Compared to ___, the right PICC line now ends in the SVC."
    )
    for comparison in ("None.", "___.", "Chest radiograph from ___.", "N/A"):
        text = f" FINAL REPORT\n EXAMINATION:  Chest.\n \n INDICATION:  Cough.\n \n COMPARISON:  {comparison}\n"
        assert parse_report(text) == ReportSections("", ""), comparison


def test_empty_or_header_only_reports_have_no_text():
    assert parse_report("") == ReportSections("", "")
    assert parse_report("   \n \n  ") == ReportSections("", "")
    assert parse_report(" FINAL REPORT\n FINDINGS:\n \n IMPRESSION:  \n") == ReportSections("", "")


def test_choose_sections_on_csv_cells():
    # pandas gives None/NaN-free "" cells with keep_default_na=False, but a None must not crash either.
    assert choose_sections(None, "  Clear  lungs. ") == ReportSections("", "Clear lungs.")
    assert choose_sections("", "", "Heart normal.", "None.") == ReportSections("", "Heart normal.")
    assert choose_sections("", "", "", "None.") == ReportSections("", "")
    assert choose_sections("Effusion.", "", "Other text.") == ReportSections("Effusion.", "")


def test_helpers():
    assert clean(" a\n  b\t c ") == "a b c"
    assert is_placeholder("___") and is_placeholder("None.") and not is_placeholder("Normal.")
