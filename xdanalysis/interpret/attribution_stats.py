"""Attribution over a slice: shares of question, context and evidence, and how attention and
attribution agree layer by layer."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.common import progress_bar
from ..core.settings import DecodingSettings, WindowSettings
from ..runs.run import table_of
from .attribution import Attribution, Attributor, method_of

__all__ = ['DECISION_GROUPS', 'attention_attribution_correlation', 'attribution_shares', 'attribution_statistics', 'summarize_attribution_statistics']


# Statistics and faithfulness --------------------------------------------------------------------

def attribution_shares(attr: Attribution, gold_sentence: tuple | None = None) -> dict:
    """Shares of the absolute attribution on question tokens, context tokens and (when given as a
    ``(start, end)`` character span of the context) the evidence sentence: the gold answer's, or
    for an unanswerable question the plausible answer's.

    >>> a = Attribution(["[CLS]", "q", "c1", "c2"], ["special", "question", "context", "context"],
    ...     np.array([[-1, -1], [0, 1], [0, 2], [3, 5]]), np.array([0.0, 1.0, -2.0, 1.0]), "span", "x", 0, 1, "q",
    ...     "c1 c2", 0.0, 0.0, 0.0)
    >>> attribution_shares(a, (0, 2))
    {'question': 0.25, 'context': 0.75, 'evidence sentence': 0.5}
    """
    weights = np.abs(attr.scores)
    total = weights.sum() or np.nan
    kinds = np.array(attr.kinds)
    shares = {"question": float(weights[kinds == "question"].sum() / total),
              "context": float(weights[kinds == "context"].sum() / total)}
    if gold_sentence is not None:
        start, end = gold_sentence
        inside = (kinds == "context") & (attr.offsets[:, 0] >= start) & (attr.offsets[:, 1] <= end)
        shares["evidence sentence"] = float(weights[inside].sum() / total)
    return shares


def attention_attribution_correlation(attention, attr: Attribution) -> pd.DataFrame:
    """Per layer, the Spearman rank correlation between the head-averaged attention each token
    receives from the span positions (the best span's tokens, or [CLS] when the window has none)
    and the magnitude of its attribution. Both must come from the same window.

    Example::

        attention_attribution_correlation(get_attention(m, t, q, c), Attributor(m, t).attribute(q, c))
    """
    if attention.window != attr.window or len(attention.tokens) != len(attr.tokens):
        raise ValueError(f"attention of window {attention.window} ({len(attention.tokens)} tokens) and attribution "
                         f"of window {attr.window} ({len(attr.tokens)} tokens) do not describe the same tokens")
    span = attr.span_tokens or attention.predicted_tokens
    rows = list(range(span[0], span[1] + 1)) if span else [attr.cls_index]
    magnitude = pd.Series(np.abs(attr.scores))
    result = []
    for layer in range(attention.attentions.shape[0]):
        received = attention.attentions[layer][:, rows, :].mean(axis=(0, 1))  # heads, then span rows
        # Spearman: Pearson on average ranks (pandas' own "spearman" needs scipy)
        result.append({"layer": layer, "spearman": pd.Series(received).rank().corr(magnitude.rank())})
    return pd.DataFrame(result)


# Over a slice -----------------------------------------------------------------------------------

DECISION_GROUPS = {"correct answer": ["correct"], "false answer": ["false_answer"],
                   "correct abstention": ["correct_abstention"]}


def _evidence_sentence(row) -> tuple | None:
    """The character span of the sentence holding the gold answer (or, unanswerable, the plausible one)."""
    from ..core.text import sentence_spans

    starts = list(row["answer_starts"]) or list(row["plausible_starts"])
    if not starts:
        return None
    start = int(starts[0])
    return next(((s, e) for s, e in sentence_spans(row["context"]) if s <= start < e), None)


def attribution_statistics(run, model, tokenizer, *, per_group: int = 10, groups=None, target: str = "null_odds",
                           method: str = "integrated_gradients", n_steps: int = 32, with_attention: bool = True,
                           seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Statistics only, over a few questions of each decision group (``DECISION_GROUPS``: correct
    answers, false answers, correct abstentions; ``per_group`` drawn with ``seed``): the shares of
    |attribution| on the question, the context and the evidence sentence (gold, or plausible for
    unanswerable questions), and per layer the rank correlation with the attention received from
    the span (:func:`attention_attribution_correlation`). One row per question and layer.

    Example::

        stats = attribution_statistics(run, model, tokenizer, per_group=20)
        stats.groupby("group")[["question", "context", "evidence sentence"]].mean()
    """

    from ..analysis.outcomes import outcomes
    from .attention import get_attention

    table = outcomes(table_of(run))
    groups = DECISION_GROUPS if groups is None else groups
    recorded = getattr(run, "info", {}).get("settings", {})
    windowing, decoding = WindowSettings.from_dict(recorded), DecodingSettings.from_dict(recorded)
    options = {"windowing": windowing, "decoding": decoding}
    attributor = Attributor(model, tokenizer, method=method_of(method, n_steps), **options)
    picked = []
    for name, members in groups.items():
        part = table[table["outcome"].isin(members)]
        part = part.sample(n=min(per_group, len(part)), random_state=seed) if len(part) else part
        picked.extend((name, row) for _, row in part.iterrows())
    rows = []
    for name, row in progress_bar(picked, desc="attributions", unit="q", disable=not progress):
        attr = attributor.attribute(row["question"], row["context"], target=target)
        base = {"id": row["id"], "group": name, "outcome": str(row["outcome"]), "n_windows": attr.n_windows,
                **attribution_shares(attr, _evidence_sentence(row))}
        if with_attention:
            attention = get_attention(model, tokenizer, row["question"], row["context"], window=attr.window, **options)
            for layer in attention_attribution_correlation(attention, attr).itertuples():
                rows.append({**base, "layer": layer.layer, "spearman": layer.spearman})
        else:
            rows.append({**base, "layer": np.nan, "spearman": np.nan})
    return pd.DataFrame(rows).assign(target=target, method=attributor.method.name)


def summarize_attribution_statistics(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per decision group: questions, and the mean share of |attribution| on the question, the
    context and the evidence sentence, each with a bootstrap 95% interval."""
    from ..core.stats import bootstrap_interval

    per_question = frame.drop_duplicates("id")
    rows = []
    for group, part in per_question.groupby("group", sort=False):
        row = {"group": group, "questions": len(part)}
        for column in ("question", "context", "evidence sentence"):
            values = part[column].dropna().to_numpy(dtype=float) if column in part else np.array([])
            low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed)
            row.update({column: 100 * values.mean() if len(values) else np.nan,
                        f"{column}_low": 100 * low, f"{column}_high": 100 * high})
        rows.append(row)
    return pd.DataFrame(rows)
