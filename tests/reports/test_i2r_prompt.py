import pytest

from syncxr.reports.i2r_prompt import REPORT_PROMPT, split_report


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("FINDINGS: Small effusion.\nIMPRESSION: Effusion.", ("Small effusion.", "Effusion.")),
        ("Findings: Clear lungs. Impression: Normal.", ("Clear lungs.", "Normal.")),
        ("**FINDINGS:** Clear lungs.\n\n**IMPRESSION:** Normal.", ("Clear lungs.", "Normal.")),
        ("**Findings**: Clear\n  lungs.\n**Impression**: Normal.", ("Clear lungs.", "Normal.")),
        ("## Findings\nClear lungs.\n## Impression\nNormal.", ("Clear lungs.", "Normal.")),
        ("Here is the report.\nIMPRESSION: Normal.", ("", "Normal.")),
        ("FINDINGS: Nodule.\nIMPRESSION:", ("Nodule.", "")),
        ("FINDINGS: Nodule. IMPRESSION: Nodule. IMPRESSION: again", ("Nodule.", "Nodule.")),
    ],
)
def test_sections_are_split_from_model_answers(answer, expected):
    assert split_report(answer) == expected


@pytest.mark.parametrize(
    "answer", [None, "", "   ", "il\x13Co\x08ax;ma&", "The findings are normal.", "FINDINGS:\nIMPRESSION:  "]
)
def test_answers_without_a_headed_section_are_unusable(answer):
    assert split_report(answer) is None


def test_the_prompt_asks_for_both_sections():
    assert "FINDINGS:" in REPORT_PROMPT and "IMPRESSION:" in REPORT_PROMPT
