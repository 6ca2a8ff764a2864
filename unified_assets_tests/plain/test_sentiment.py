"""Ticket sentiment: support language scored as support language, and the model chosen by held-out F1."""

import pytest

from unified_assets.sentiment import LexiconModel, TextModel, choose_model


def test_politeness_is_not_praise_and_complaints_are_negative_even_when_calm():
    model = LexiconModel()
    labels = model.predict(
        [
            "Hello support, please help us with the invoice copy. Kind regards",
            "The delivery is late again and two units arrived broken; we need a refund.",
            "Thanks a lot, your team has been great to work with.",
        ]
    )
    assert list(labels) == ["neutral", "negative", "positive"]


def corpus(n: int = 60) -> tuple[list[str], list[str]]:
    """Labels that only a learned model can read: the tone is in product codes, not in words."""
    texts, labels = [], []
    for i in range(n):
        label = ("negative", "neutral", "positive")[i % 3]
        code = {"negative": "zx41", "neutral": "qq07", "positive": "mm88"}[label]
        texts.append(f"Ticket {i} about batch {code} for order {i * 7}")
        labels.append(label)
    return texts, labels


def test_the_model_with_the_better_held_out_f1_is_chosen_and_versioned():
    texts, labels = corpus()
    choice = choose_model(texts, labels)
    assert choice.f1["tfidf_logistic_regression"] > choice.f1["vader_support_lexicon"]
    assert isinstance(choice.model, TextModel)
    assert choice.version.startswith("tfidf_logistic_regression-")
    assert choice.held_out == 15
    scores = choice.model.score(texts)
    assert ((scores >= -1) & (scores <= 1)).all()


@pytest.mark.parametrize(
    "labels", [[], ["positive", "negative"], ["negative"] * 30, ["negative"] * 29 + ["positive"]]
)
def test_with_too_few_labels_the_lexicon_scores_and_says_why(labels):
    texts = [f"ticket {i}: the delivery was late and the box broken" for i in range(len(labels))]
    choice = choose_model(texts, labels)
    assert isinstance(choice.model, LexiconModel) and choice.f1 == {} and choice.held_out == 0
    assert choice.version.startswith("vader_support_lexicon-")
    assert "too few" in choice.reason
    assert choice.model.predict(["the delivery was late and the box broken"])[0] == "negative"
