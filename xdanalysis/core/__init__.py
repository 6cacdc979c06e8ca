"""The bottom floor, no torch: SQuAD data, the official metrics, decoding logits into answers, settings,
statistics, text features and atomic files."""

from .common import logit, sigmoid
from .data import DataError, HubUnreachableError, Selection, first_per_title, gold_answers, load_squad, write_squad
from .decoding import Window, decode_question
from .io import read_null_odds
from .metrics import (
    MissingPredictionsError,
    abstain_baseline,
    compute_exact,
    compute_f1,
    normalize_answer,
    squad_v2_scores,
)
from .settings import (ENGINES, NAIVE_INT8, RUNTIMES, DecodingSettings, Execution, Int8Settings, OpenVINOSettings,
                       WindowSettings)
from .stats import MIN_INTERVAL_COUNT, bootstrap_ci, paired_bootstrap, softmax
from .text import QUESTION_TYPES, question_type
from .unanswerable import CAUSES, load_rationales, load_unanswerable_causes
from .thresholds import answered_at, best_f1_threshold, scores_at

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['CAUSES', 'ENGINES', 'MIN_INTERVAL_COUNT', 'NAIVE_INT8', 'QUESTION_TYPES', 'RUNTIMES', 'DataError',
           'DecodingSettings', 'Execution', 'HubUnreachableError', 'Int8Settings', 'MissingPredictionsError',
           'OpenVINOSettings', 'Selection', 'Window',
           'WindowSettings', 'abstain_baseline', 'answered_at', 'best_f1_threshold', 'bootstrap_ci', 'compute_exact',
           'compute_f1', 'decode_question', 'first_per_title', 'gold_answers', 'load_rationales', 'load_squad',
           'load_unanswerable_causes', 'logit', 'normalize_answer', 'paired_bootstrap', 'question_type',
           'read_null_odds', 'scores_at', 'sigmoid', 'softmax', 'squad_v2_scores', 'write_squad']
