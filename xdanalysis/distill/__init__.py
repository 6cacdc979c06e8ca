"""Distillation: training targets, the loss, cached teacher logits, students, training (the lab that
compares students: :mod:`xdanalysis.labs.distill`)."""

from .config import DistillConfig, Distilled
from .losses import attention_loss, distillation_loss, soft_gradient_scale, soft_target_entropy
from .students import cut_layers, layer_student
from .teacher import TeacherPass, teacher_logits
from .train import distill

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['DistillConfig', 'Distilled', 'TeacherPass', 'attention_loss', 'cut_layers', 'distill', 'distillation_loss',
           'layer_student', 'soft_gradient_scale', 'soft_target_entropy', 'teacher_logits']
