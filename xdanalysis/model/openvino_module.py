"""The OpenVINO compiled model behind a PyTorch model's call (its own module: it imports torch, which
importing xdanalysis.model must not)."""

from __future__ import annotations

import torch
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from .runtime import require_torch

__all__: list = []  # made by xdanalysis.model.openvino.openvino_model


class OpenVINOModel(torch.nn.Module):
    """A QA model compiled by OpenVINO, called as a transformers QA model is (``input_ids``,
    ``attention_mask``, ``token_type_ids``) and answering with its ``start_logits`` and ``end_logits``.

    ``runtime`` is ``"openvino"``, ``dtype_name`` the precision it runs in, ``record`` how it was made
    (weights, versions, calibration, threads, the cache entry); ``config`` is the checkpoint's. Asking for
    attention weights or hidden states, or for anything but the three inputs, is refused (:func:`require_torch`).
    """

    runtime = "openvino"

    def __init__(self, compiled, *, config, dtype_name: str, record: dict):
        super().__init__()
        # Where the inputs go (the forward pass reads a parameter's device): the CPU; no weight of the model.
        self.anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)
        self.compiled = compiled
        self.config = config
        self.dtype_name = dtype_name
        self.record = record
        self.name_or_path = getattr(config, "_name_or_path", None)
        self.inputs = [port.get_any_name() for port in compiled.inputs]

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **asked):
        wanted = [name for name, value in asked.items() if value not in (None, False)]
        if wanted:
            require_torch(self, ", ".join(wanted))
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: given[name].cpu().numpy() for name in self.inputs}
        result = self.compiled(feed)
        return QuestionAnsweringModelOutput(start_logits=torch.from_numpy(result["start_logits"].copy()),
                                            end_logits=torch.from_numpy(result["end_logits"].copy()))

    def extra_repr(self) -> str:
        return f"dtype={self.dtype_name}, threads={self.record.get('threads')}, cache={self.record.get('cache')}"
