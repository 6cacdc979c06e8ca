"""Distillation: training targets, the loss, cached teacher logits, students, training, the lab."""

from .config import DISTILL_DEFAULTS, DistillConfig, Distilled, default_precision
from .lab import (
    LAB_RESULTS,
    LAB_STUDENTS,
    LabRecipe,
    NAIVE_RECIPE,
    lab_checkpoints,
    lab_questions,
    lab_scores,
    lab_student,
    lab_table,
)
from .losses import attention_loss, distillation_loss, soft_gradient_scale, soft_target_entropy
from .students import cut_layers, layer_student
from .targets import epoch_batches
from .teacher import move_distribution, teacher_chunk, teacher_logits
from .train import distill

__all__ = ['DISTILL_DEFAULTS', 'DistillConfig', 'Distilled', 'LAB_RESULTS', 'LAB_STUDENTS', 'LabRecipe', 'NAIVE_RECIPE', 'attention_loss', 'cut_layers', 'default_precision', 'distill', 'distillation_loss', 'epoch_batches', 'lab_checkpoints', 'lab_questions', 'lab_scores', 'lab_student', 'lab_table', 'layer_student', 'move_distribution', 'soft_gradient_scale', 'soft_target_entropy', 'teacher_chunk', 'teacher_logits']
