"""Ticket sentiment, computed locally: a lexicon model and a text model, the better one chosen by macro F1
on held-out agent-labelled tickets. No Dagster here, and nothing is downloaded: VADER's lexicon ships inside
its package, and the text model learns from our own labelled tickets.

Support language needs its own lexicon adjustments: "please", "support", "help" and "thanks for your help"
are politeness, not praise; "late", "refund", "broken", "damaged" and friends are complaints even when
phrased calmly.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

LABELS = ("negative", "neutral", "positive")
SCORES = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
# VADER valence is on a -4..4 scale.
SUPPORT_LEXICON = {
    "please": 0.0,
    "support": 0.0,
    "help": 0.0,
    "helpful": 0.8,
    "kind": 0.0,
    "regards": 0.0,
    "late": -1.8,
    "delayed": -1.8,
    "delay": -1.5,
    "refund": -1.6,
    "broken": -2.2,
    "damaged": -2.2,
    "cracked": -2.0,
    "crushed": -2.0,
    "fails": -2.0,
    "peels": -1.5,
    "wrong": -1.8,
    "missing": -1.5,
    "twice": -0.8,
    "unacceptable": -2.8,
    "still": -0.5,
}


class LexiconModel:
    """VADER with the support lexicon; compound score above/below +-threshold is positive/negative."""

    name = "vader_support_lexicon"

    def __init__(self, threshold: float = 0.35):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.threshold = threshold
        self.analyzer = SentimentIntensityAnalyzer()
        self.analyzer.lexicon.update(SUPPORT_LEXICON)

    def fit(self, texts: list[str], labels: list[str]) -> LexiconModel:
        return self  # nothing to learn

    def score(self, texts: list[str]) -> np.ndarray:
        return np.array([self.analyzer.polarity_scores(t)["compound"] for t in texts])

    def predict(self, texts: list[str]) -> np.ndarray:
        scores = self.score(texts)
        return np.where(
            scores >= self.threshold,
            "positive",
            np.where(scores <= -self.threshold, "negative", "neutral"),
        )


class TextModel:
    """TF-IDF of words and word pairs, multinomial logistic regression, classes balanced."""

    name = "tfidf_logistic_regression"

    def __init__(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0),
        )

    def fit(self, texts: list[str], labels: list[str]) -> TextModel:
        self.pipeline.fit(texts, labels)
        return self

    def score(self, texts: list[str]) -> np.ndarray:
        """Expected label value (-1..1) under the predicted class probabilities."""
        probabilities = self.pipeline.predict_proba(texts)
        values = np.array([SCORES[c] for c in self.pipeline.classes_])
        return probabilities @ values

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.pipeline.predict(texts)


MODELS = (LexiconModel, TextModel)


# Below this many agent labels (or fewer than two of each label), a held-out F1 says nothing: the lexicon,
# which needs no labels, scores the tickets until enough have been labelled.
MIN_LABELLED = 20


@dataclass(frozen=True)
class Choice:
    model: object  # the chosen model, refitted on every labelled ticket
    f1: dict[
        str, float
    ]  # macro F1 of each candidate on the held-out tickets; empty when none was held out
    held_out: int
    version: str
    reason: str  # why this model, in words


def ticket_text(subject: pd.Series, description: pd.Series) -> list[str]:
    return (subject.fillna("") + "\n" + description.fillna("")).tolist()


def choose_model(texts: list[str], labels: list[str], seed: int = 0) -> Choice:
    """Hold out a stratified quarter, score each candidate by macro F1 there, refit the winner on all; with
    too few labels to hold any out, the lexicon."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split

    fingerprint = hashlib.sha256("\x1f".join(texts + labels).encode()).hexdigest()[:10]
    counts = Counter(labels)
    if len(labels) < MIN_LABELLED or len(counts) < 2 or min(counts.values()) < 2:
        return Choice(
            LexiconModel(),
            {},
            0,
            f"{LexiconModel.name}-{fingerprint}",
            f"{len(labels)} agent-labelled tickets ({dict(counts) or 'none'}): too few to train or "
            f"compare on, so the lexicon scores until at least {MIN_LABELLED} are labelled",
        )
    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    f1 = {}
    for candidate in MODELS:
        model = candidate().fit(train_x, train_y)
        f1[candidate.name] = float(
            f1_score(test_y, model.predict(test_x), average="macro", labels=list(LABELS))
        )
    best = max(MODELS, key=lambda m: f1[m.name])
    reason = f"macro F1 {f1[best.name]:.3f} on {len(test_y)} held-out tickets"
    return Choice(best().fit(texts, labels), f1, len(test_y), f"{best.name}-{fingerprint}", reason)
