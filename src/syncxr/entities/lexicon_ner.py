"""A lexicon NER: longest-match dictionary lookup with sentence-scoped negation.

It stands in for RaTE-NER in the phantom world: same five entity types, same output records.
"""

from __future__ import annotations

import re

from ..phantom.vocabulary import ANATOMY, NEGATED_TYPE, phantom_lexicon

# A sentence opening with one of these negates the findings it names ("No effusion or pneumothorax.").
NEGATION_OPENERS = ("no ", "there is no ", "there are no ", "no evidence of ", "without ")
_SENTENCES = re.compile(r"[^.!?]+[.!?]?")


class LexiconNER:
    """`extract(text)` -> [{name, type}] in order of appearance, each (name, type) once."""

    name = "lexicon"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(self, lexicon: dict[str, str]):
        if not lexicon:
            raise ValueError("lexicon NER needs a non-empty lexicon")
        self.lexicon = {k.lower(): v for k, v in lexicon.items()}
        terms = sorted(self.lexicon, key=len, reverse=True)  # longest first: "pleural effusion" > "effusion"
        self.pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")(?:e?s)?\b", re.I)

    def extract(self, text: str) -> list[dict]:
        out: list[dict] = []
        for sentence in _SENTENCES.findall(text or ""):
            negated = sentence.strip().lower().startswith(NEGATION_OPENERS)
            for m in self.pattern.finditer(sentence):
                name = m.group(1).lower()
                etype = self.lexicon[name]
                if negated and etype != ANATOMY:
                    etype = NEGATED_TYPE[etype]
                item = {"name": name, "type": etype}
                if item not in out:
                    out.append(item)
        return out

    def extract_batch(self, texts: list[str]) -> list[list[dict]]:
        return [self.extract(t) for t in texts]


def phantom_lexicon_ner() -> LexiconNER:
    """The NER of the phantom world: its own lexicon, so it agrees exactly with the report writer."""
    return LexiconNER(phantom_lexicon())
