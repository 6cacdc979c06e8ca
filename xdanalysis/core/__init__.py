"""The bottom floor, no torch: SQuAD data, the official metrics, decoding logits into answers, settings,
statistics, text features and atomic files."""

from .common import MAX_NAMED, check_choice, is_reference, logit, name_some, rename_options, sigmoid, table_of
from .data import (
    COLUMNS,
    DataError,
    HubUnreachableError,
    data_problem,
    disjoint_samples,
    first_per_title,
    gold_answers,
    hub_reachable,
    load_squad,
    source_fingerprint,
    title_list,
    validate_table,
    write_squad,
)
from .decoding import Window, decode_question
from .io import NULL_ODDS_NO_SPAN, finite_odds, peak_rss_mb, read_null_odds, write_atomic, write_json, write_text
from .metrics import (
    MissingPredictionsError,
    abstain_baseline,
    compute_exact,
    compute_f1,
    normalize_answer,
    precision_recall_curve,
    question_scores,
    squad_v2_scores,
    table_scores,
)
from .settings import (
    DECODING_DEFAULTS,
    DecodingSettings,
    INT8_ENGINES,
    Int8Settings,
    NAIVE_INT8,
    WindowSettings,
    settings_of_run,
)
from .stats import (
    MIN_INTERVAL_COUNT,
    bootstrap_ci,
    bootstrap_interval,
    bootstrap_means,
    format_p_value,
    kl_divergence,
    paired_bootstrap,
    softmax,
)
from .text import (
    QUESTION_TYPES,
    STOPWORDS,
    WordLayout,
    content_words,
    lexical_overlap,
    question_type,
    sentence_spans,
    token_char,
    word_groups,
    word_layout,
)
from .thresholds import answered_at, best_f1_threshold, scores_at, span_scores

__all__ = ['COLUMNS', 'DECODING_DEFAULTS', 'DataError', 'DecodingSettings', 'HubUnreachableError', 'INT8_ENGINES', 'Int8Settings', 'MAX_NAMED', 'MIN_INTERVAL_COUNT', 'MissingPredictionsError', 'NAIVE_INT8', 'NULL_ODDS_NO_SPAN', 'QUESTION_TYPES', 'STOPWORDS', 'Window', 'WindowSettings', 'WordLayout', 'abstain_baseline', 'answered_at', 'best_f1_threshold', 'bootstrap_ci', 'bootstrap_interval', 'bootstrap_means', 'check_choice', 'compute_exact', 'compute_f1', 'content_words', 'data_problem', 'decode_question', 'disjoint_samples', 'finite_odds', 'first_per_title', 'format_p_value', 'gold_answers', 'hub_reachable', 'is_reference', 'kl_divergence', 'lexical_overlap', 'load_squad', 'logit', 'name_some', 'normalize_answer', 'paired_bootstrap', 'peak_rss_mb', 'precision_recall_curve', 'question_scores', 'question_type', 'read_null_odds', 'rename_options', 'scores_at', 'sentence_spans', 'settings_of_run', 'sigmoid', 'softmax', 'source_fingerprint', 'span_scores', 'squad_v2_scores', 'table_of', 'table_scores', 'title_list', 'token_char', 'validate_table', 'word_groups', 'word_layout', 'write_atomic', 'write_json', 'write_squad', 'write_text']
