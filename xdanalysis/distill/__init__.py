"""Distillation: training targets, the loss, cached teacher logits, students, training, the lab."""

from .config import DistillConfig, Distilled
from .lab import (
    LAB_RESULTS,
    LAB_STUDENTS,
    NAIVE_RECIPE,
    LabRecipe,
    lab_checkpoints,
    lab_questions,
    lab_student,
    lab_table,
    read_lab_results,
)
from .losses import attention_loss, distillation_loss, soft_gradient_scale, soft_target_entropy
from .students import cut_layers, layer_student
from .teacher import teacher_logits
from .train import distill

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['LAB_RESULTS', 'LAB_STUDENTS', 'NAIVE_RECIPE', 'DistillConfig', 'Distilled', 'LabRecipe',
           'attention_loss', 'cut_layers', 'distill', 'distillation_loss', 'lab_checkpoints', 'lab_questions',
           'lab_student', 'lab_table', 'layer_student', 'read_lab_results', 'soft_gradient_scale',
           'soft_target_entropy', 'teacher_logits']
