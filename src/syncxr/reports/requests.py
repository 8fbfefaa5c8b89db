"""What the report loop asks an LLM for, and the chat prompts real LLMs receive."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..phantom.vocabulary import ABNORMALITY, ANATOMY, DISEASE, NON_ABNORMALITY, NON_DISEASE

SYSTEM = (
    "You are an expert radiologist writing chest X-ray reports. Write plain prose in the style "
    "of a clinical report. Output only the requested section text, with no heading."
)
TYPE_HINTS = {
    ABNORMALITY: "abnormal findings that are present",
    DISEASE: "diseases that are present",
    NON_ABNORMALITY: "abnormal findings that are explicitly absent (state them as absent)",
    NON_DISEASE: "diseases that are explicitly absent (state them as absent)",
    ANATOMY: "anatomical structures to mention",
}


@dataclass
class ReportRequest:
    """One generation call: `section` is "findings" or "impression"."""

    sample_id: str
    section: str
    entities: list[dict]  # [{name, type}] that the text must contain, and nothing else
    seed: int  # per sample and attempt: a retry asks for a different text
    findings: str = ""  # the FINDINGS an IMPRESSION summarises
    extra: dict = field(default_factory=dict)

    def messages(self) -> list[dict]:
        lines = []
        for etype, hint in TYPE_HINTS.items():
            names = [e["name"] for e in self.entities if e["type"] == etype]
            if names:
                lines.append(f"- {hint}: {', '.join(names)}")
        listing = "\n".join(lines)
        if self.section == "findings":
            user = (
                "Write the FINDINGS section of a chest X-ray report. Mention every one of these "
                "entities, using these exact words, and no other findings, diseases or anatomy:\n" + listing
            )
        else:
            user = (
                f"FINDINGS: {self.findings}\n\nWrite the IMPRESSION section summarising these "
                "FINDINGS. Keep every one of these entities, using these exact words, and add no "
                "others:\n" + listing
            )
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def clean_section(text: str | None, section: str) -> str | None:
    """The section body from an LLM answer, or None when the answer is unusable."""
    if text is None:
        return None
    t = text.strip()
    for head in (f"{section.upper()}:", f"{section.capitalize()}:", f"**{section.upper()}**:"):
        if t.startswith(head):
            t = t[len(head) :].strip()
    return t or None
