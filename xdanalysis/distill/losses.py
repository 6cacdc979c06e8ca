"""The distillation loss (soft targets and hard labels), MiniLM attention transfer, and the
temperature views a class is shown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.settings import WindowSettings
from ..core.stats import softmax
from ..model.forward import forward_windows
from ..model.windows import length_batches, prepare_windows
from .config import DISTILL_DEFAULTS

__all__ = ['attention_loss', 'distillation_loss', 'soft_gradient_scale', 'soft_target_entropy']


# Losses --------------------------------------------------------------------------------------

def distillation_loss(student_start, student_end, teacher_start, teacher_end, start_positions, end_positions, *,
                      temperature: float = DISTILL_DEFAULTS["temperature"], alpha: float = DISTILL_DEFAULTS["alpha"],
                      mask=None) -> dict:
    """The soft-target distillation loss of a batch of windows (tensors ``[batch, tokens]``).

    ``alpha · T² · ½[KL(p_t‖p_s)_start + KL(p_t‖p_s)_end] + (1 − alpha) · ½[CE_start + CE_end]``
    with ``p = softmax(logits / T)`` over each window's real tokens (``mask`` 1 for real tokens,
    padding excluded), KL summed over positions and averaged over the batch (``kl_div`` with
    ``reduction="batchmean"``), CE the usual cross-entropy on the hard positions. The T² keeps the
    soft term's gradients at the scale of the hard term's as T grows (Hinton et al. 2015).
    ``alpha`` is one number or one per window (``[batch]``: 1 for a window labelled only by the
    teacher, whose gold is not used). Returns ``{"total", "soft", "hard"}`` (``soft`` and ``hard``
    unweighted; ``hard`` over the windows whose gold counts).

    Example::

        losses = distillation_loss(s_start, s_end, t_start, t_end, y_start, y_end, temperature=2.0, alpha=0.5)
        losses["total"].backward()
    """
    import torch
    import torch.nn.functional as F

    weights = (alpha.to(student_start.device, student_start.dtype) if torch.is_tensor(alpha)
               else torch.tensor(float(alpha), dtype=student_start.dtype, device=student_start.device))
    if not bool(((weights >= 0) & (weights <= 1)).all()):
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if mask is None:
        mask = torch.ones_like(student_start, dtype=torch.bool)
    mask = mask.bool()
    very_negative = -1e4  # finite: exp(-1e4 / T) is 0 for any usable T, and 0 · log 0 stays 0 in kl_div

    def masked(logits):
        return logits.masked_fill(~mask, very_negative)

    def soft(student, teacher):  # per window: KL summed over positions
        log_p_student = F.log_softmax(masked(student) / temperature, dim=-1)
        p_teacher = F.softmax(masked(teacher.to(student.dtype)) / temperature, dim=-1)
        return F.kl_div(log_p_student, p_teacher, reduction="none").sum(-1)

    soft_rows = 0.5 * (soft(student_start, teacher_start) + soft(student_end, teacher_end))
    hard_rows = 0.5 * (F.cross_entropy(masked(student_start), start_positions, reduction="none")
                       + F.cross_entropy(masked(student_end), end_positions, reduction="none"))
    weights = weights.expand_as(soft_rows)
    total = (weights * temperature**2 * soft_rows + (1 - weights) * hard_rows).mean()
    labelled = weights < 1  # windows whose gold counts (teacher-labelled transfer windows have alpha 1)
    hard = hard_rows[labelled].mean() if bool(labelled.any()) else hard_rows.mean()
    return {"total": total, "soft": soft_rows.mean(), "hard": hard}


def attention_loss(student_attention, teacher_attention, mask):
    """MiniLM-style attention transfer: KL(teacher‖student) between the last layer's attention
    distributions (``[batch, heads, tokens, tokens]``), per head when the head counts agree, heads
    averaged otherwise; summed over the attended tokens, averaged over real query rows and heads.

    Example::

        attention_loss(student_out.attentions[-1], teacher_out.attentions[-1], batch["attention_mask"])
    """
    import torch

    if student_attention.shape[1] != teacher_attention.shape[1]:
        student_attention = student_attention.mean(dim=1, keepdim=True)
        teacher_attention = teacher_attention.mean(dim=1, keepdim=True)
    eps = 1e-9
    kl = (teacher_attention * (torch.log(teacher_attention + eps) - torch.log(student_attention + eps))).sum(-1)
    rows = mask.bool()[:, None, :].expand_as(kl)
    return kl[rows].mean()


# What temperature does ------------------------------------------------------------------------

def soft_target_entropy(model, tokenizer, table: pd.DataFrame, temperatures=(0.5, 1, 2, 4, 8), *,
                        max_seq_length: int = DISTILL_DEFAULTS["max_seq_length"],
                        doc_stride: int = DISTILL_DEFAULTS["doc_stride"]) -> pd.DataFrame:
    """How soft a model's start distributions are at each temperature, over ``table``'s windows:
    mean entropy (nats, over each window's real tokens) and mean probability of the null
    ([CLS]) position, answerable and unanswerable questions apart.

    Example::

        soft_target_entropy(teacher, tokenizer, run.table.head(50))
    """
    windows = prepare_windows(table, tokenizer, WindowSettings(max_seq_length, doc_stride))
    outputs = []
    for batch in length_batches(windows.lengths(), 32):
        outputs += list(zip(batch, forward_windows(model, windows, batch)))
    has_answer = np.array([len(t) > 0 for t in table["answer_texts"]])
    rows = []
    for temperature in temperatures:
        for w, out in outputs:
            p = softmax(out.start_logits, temperature)
            rows.append({"temperature": float(temperature), "answerable": bool(has_answer[windows.question_index[w]]),
                         "entropy": float(-(p * np.log(np.maximum(p, 1e-300))).sum()),
                         "null_probability": float(p[windows.cls_index[w]]), "tokens": len(p)})
    frame = pd.DataFrame(rows)
    return frame.groupby(["temperature", "answerable"], as_index=False).agg(
        entropy=("entropy", "mean"), null_probability=("null_probability", "mean"), windows=("entropy", "size"),
        max_entropy=("tokens", lambda n: float(np.mean(np.log(n)))))


def soft_gradient_scale(student_logits, teacher_logits, temperatures=(1, 2, 4, 8)) -> pd.DataFrame:
    """Why the soft term is multiplied by T²: the norm of its gradient with respect to the
    student's logits, with and without the T² factor, at each temperature (the gradient of the
    KL at T shrinks as 1/T² for large T; the factor restores it). ``*_logits``: ``[windows, tokens]``.

    >>> frame = soft_gradient_scale(np.array([[1.0, 2.0, 0.0]]), np.array([[0.0, 3.0, 1.0]]), [1, 8])
    >>> bool(frame["without T²"].iloc[1] < frame["without T²"].iloc[0])
    True
    """
    import torch

    teacher = torch.as_tensor(np.asarray(teacher_logits, dtype=np.float64))
    rows = []
    for temperature in temperatures:
        student = torch.as_tensor(np.asarray(student_logits, dtype=np.float64)).clone().requires_grad_(True)
        loss = distillation_loss(student, student.detach(), teacher, teacher.detach(),
                                 torch.zeros(len(teacher), dtype=torch.long), torch.zeros(len(teacher), dtype=torch.long),
                                 temperature=float(temperature), alpha=1.0)["soft"] * 2  # the start term alone
        (gradient,) = torch.autograd.grad(loss, student)
        norm = float(gradient.norm())
        rows.append({"temperature": float(temperature), "without T²": norm, "with T²": norm * temperature**2})
    return pd.DataFrame(rows)
