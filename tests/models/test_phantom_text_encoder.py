"""The phantom text tower's tokenizer is fixed by its texts: the same seed gives the same token ids
in every process (the first run in a fresh cache trains like every later one)."""

from syncxr.models.phantom_text_encoder import SPECIAL, phantom_report_texts, train_wordpiece, wordpiece_vocab

TEXTS = phantom_report_texts(300, 0)


def test_training_twice_gives_the_same_tokenizer():
    a, b = train_wordpiece(TEXTS, 400), train_wordpiece(TEXTS, 400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert a.get_vocab() == b.get_vocab()


def test_vocabulary_keeps_specials_characters_and_the_most_frequent_words():
    vocab = wordpiece_vocab(["the effusion. the effusion. the nodule."], 5 + 2 * 12 + 2)
    assert [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1])][:5] == SPECIAL
    assert {"e", "##e", ".", "##."} <= set(vocab)
    assert "the" in vocab and "effusion" in vocab and "nodule" not in vocab  # 3 > 2 > 1 mentions, room for two
    tok = train_wordpiece(["the effusion. the effusion. the nodule."], 31)
    pieces = tok.tokenize("the nodule")
    assert pieces[0] == "the" and pieces[1] == "n" and all(p.startswith("##") for p in pieces[2:])
    assert tok.decode(tok("the nodule")["input_ids"], skip_special_tokens=True) == "the nodule"
