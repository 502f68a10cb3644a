"""Tiny float64 versions of the models people train, for the adapters' model-zoo tests.

Each is a few hundred to about a thousand parameters, built from code or from a
library's config with random weights (nothing is downloaded), with the features
that once broke an adapter: in-place residual adds and activations, BatchNorm,
scaled-dot-product attention with causal and padding masks, tied weights,
Hugging Face output objects and dict batches, recurrent layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


class ResidualCNN(nn.Module):
    """A ResNet basic block as torchvision writes it: ``out += identity``, in-place ReLU."""

    def __init__(self, channels: int = 3, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.relu(self.bn0(self.stem(x)))
        out = self.relu(self.bn1(self.conv1(identity)))
        out = self.bn2(self.conv2(out))
        out += identity
        out = self.relu(out)
        return self.head(out.mean(dim=(2, 3)))


class AttentionBlock(nn.Module):
    """A pre-norm transformer block with ``F.scaled_dot_product_attention``.

    ``forward(x, padding_mask=None)``: causal attention (``is_causal=True``, the
    fused kernels' case) without a mask; with a (batch, time) padding mask, a
    boolean causal-and-padding mask (the math kernel's case).
    """

    def __init__(self, width: int = 8, heads: int = 2, classes: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        wide = 2 * width
        self.mlp = nn.Sequential(nn.Linear(width, wide), nn.GELU(), nn.Linear(wide, width))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, w // self.heads).unbind(2)
        q, k, v = (a.transpose(1, 2) for a in (q, k, v))
        if padding_mask is None:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            mask = causal & padding_mask[:, None, None, :].bool()
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, w))
        x = x + self.mlp(self.norm2(x))
        return self.head(x[:, -1] if padding_mask is None else x[:, 0])


class LSTMClassifier(nn.Module):
    """An LSTM over a sequence, classified from its last hidden state."""

    def __init__(self, features: int = 3, hidden: int = 5, classes: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def tiny_gpt2() -> Any:
    """GPT-2 from a config (random weights): the LM head's weight is tied to the embedding."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_embd=8,
        n_layer=1,
        n_head=2,
        vocab_size=11,
        n_positions=8,
        bos_token_id=None,  # GPT-2's 50256 is outside this vocabulary
        eos_token_id=None,
    )
    return GPT2LMHeadModel(config).double()


def tiny_bert() -> Any:
    """BERT for sequence classification from a config (random weights)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=13,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=12,
        max_position_embeddings=8,
        num_labels=3,
    )
    return BertForSequenceClassification(config).double()


def tiny_hf_resnet() -> Any:
    """A Hugging Face ResNet (basic blocks, ``hidden_state += residual``) from a config."""
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=1,
        embedding_size=4,
        hidden_sizes=[4, 6],
        depths=[1, 1],
        layer_type="basic",
        num_labels=3,
    )
    return ResNetForImageClassification(config).double()


def lm_loss(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy in the model's own dtype, from a ``ModelOutput``'s logits."""
    logits = outputs.logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def logits_loss(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Cross entropy of a ``ModelOutput``'s logits, in the model's own dtype."""
    return F.cross_entropy(outputs.logits, labels)
