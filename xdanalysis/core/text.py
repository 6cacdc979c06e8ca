"""Text features shared by every analysis: question type, content words, the one sentence splitter
(pysbd), lexical overlap, and tokens grouped into words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ['token_char', 'QUESTION_TYPES', 'STOPWORDS', 'WordLayout', 'content_words', 'lexical_overlap', 'question_type', 'sentence_spans', 'word_groups', 'word_layout']


_YES_NO_START = re.compile(r"^(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b")


def question_type(question: str) -> str:
    """The question's type from its wording.

    One of what, which, who, whom, whose, when, where, why, how many, how much, how (other),
    yes/no, other. The first wh-word decides ("In what year..." is *what*); "what/which year"
    stays *what*/*which*.

    >>> [question_type(q) for q in ["How many legs?", "In which city?", "Is it red?", "Name the king."]]
    ['how many', 'which', 'yes/no', 'other']
    """
    text = question.strip().lower()
    words = re.findall(r"[a-z']+", text)
    for i, word in enumerate(words):
        if word == "how":
            following = words[i + 1] if i + 1 < len(words) else ""
            if following == "many":
                return "how many"
            if following == "much":
                return "how much"
            return "how (other)"
        if word in ("what", "which", "who", "whom", "whose", "when", "where", "why"):
            return word
    if _YES_NO_START.match(text):
        return "yes/no"
    return "other"


QUESTION_TYPES = ["what", "which", "who", "whom", "whose", "when", "where", "why", "how many", "how much",
                  "how (other)", "yes/no", "other"]


STOPWORDS = set("a an the of in on at to for by with from and or is are was were be been being do does did "
                 "what which who whom whose when where why how that this these those it its as into than".split())


def content_words(text: str) -> set:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS}


def lexical_overlap(question: str, context: str, start: int) -> float:
    """Share of the question's content words found in the context sentence holding ``start``
    (sentences from :func:`sentence_spans`).

    >>> lexical_overlap("Who built the castle at Caen?", "Rain fell. The castle at Caen was built by William.", 27)
    1.0
    """
    if start < 0:
        return float("nan")
    spans = sentence_spans(context)
    # the sentence holding ``start`` (pysbd, the splitter every analysis uses), or the next one
    begin, end = next(((b, e) for b, e in spans if start < e), spans[-1] if spans else (0, len(context)))
    sentence = context[begin:end]
    words = content_words(question)
    if not words:
        return float("nan")
    return len(words & content_words(sentence)) / len(words)


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


@lru_cache(maxsize=4096)
def sentence_spans(text: str) -> tuple:
    """``(start, end)`` character spans of the sentences of ``text`` (pysbd), without the
    whitespace between them.

    >>> text = "Dr. Smith won in 1759. It was 3.5 km away!"
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['Dr. Smith won in 1759.', 'It was 3.5 km away!']
    """
    spans, position = [], 0
    for sentence in _segmenter().segment(text):
        piece = sentence.strip()
        if not piece:
            continue
        start = text.find(piece, position)
        if start < 0:  # the splitter changed the text: keep what is left as one sentence
            break
        spans.append((start, start + len(piece)))
        position = start + len(piece)
    rest = text[position:].strip()
    if rest:
        start = text.index(rest, position)
        spans.append((start, start + len(rest)))
    return tuple(spans)


def token_char(context: str, start: int, end: int, *, which: str) -> int:
    """The character a token's probability belongs to: its first (``which="start"``) or last
    (``"end"``) non-space character (byte-level BPE tokens can begin with the space before a word).
    The one alignment of tokens to characters, shared by soft targets over words and teacher
    distributions moved across tokenizers.

    >>> token_char(" ab cd", 0, 3, which="start"), token_char("ab  ", 0, 4, which="end")
    (1, 1)
    """
    if which == "start":
        while start < end - 1 and context[start].isspace():
            start += 1
        return start
    if which != "end":
        raise ValueError(f"unknown which {which!r}; use 'start' or 'end'")
    while end - 1 > start and context[end - 1].isspace():
        end -= 1
    return end - 1


def word_groups(kinds: list, offsets, question: str, context: str) -> list[list[int]]:
    """Token indices grouped into words: pieces belong to one word when they touch (one ends where
    the next starts) with letters or digits on both sides of the seam ("gus|tave", not "who|?").
    Special tokens stay alone.

    >>> word_groups(["special", "context", "context", "context"], [[-1, -1], [0, 3], [3, 6], [6, 7]], "", "gustav.")
    [[0], [1, 2], [3]]
    """
    def text(kind):
        return context if kind == "context" else question

    groups, previous = [], None
    for i, (kind, (start, end)) in enumerate(zip(kinds, offsets)):
        joined = (previous is not None and kind != "special" and kinds[previous] == kind
                  and offsets[previous][1] == start and 0 < start < len(text(kind))
                  and text(kind)[start - 1].isalnum() and text(kind)[start].isalnum())
        if joined:
            groups[-1].append(i)
        else:
            groups.append([i])
        previous = i
    return groups


@dataclass
class WordLayout:
    """Tokens grouped into words (:func:`word_groups`): each word's text, kind and character offsets,
    and ``index`` from a token to its word."""

    groups: list
    texts: list
    kinds: list
    offsets: np.ndarray
    index: dict

    def span(self, span):
        """A token span ``(first, last)`` as the span of the words holding them (None stays None)."""
        return None if span is None else (self.index[span[0]], self.index[span[1]])


def word_layout(tokens: list, kinds: list, offsets, question: str, context: str) -> WordLayout:
    """The words of a window's tokens, shared by the attention and the attribution views."""
    groups = word_groups(kinds, offsets, question, context)

    def text_of(members):
        kind = kinds[members[0]]
        if kind == "special":
            return tokens[members[0]]
        source = context if kind == "context" else question
        return source[offsets[members[0]][0]: offsets[members[-1]][1]]

    return WordLayout(groups=groups, texts=[text_of(g) for g in groups], kinds=[kinds[g[0]] for g in groups],
                      offsets=np.array([[offsets[g[0]][0], offsets[g[-1]][1]] for g in groups], dtype=np.int64),
                      index={t: w for w, members in enumerate(groups) for t in members})
