"""The pieces of :class:`~daily_mlops.ml.network.TabTransformer`'s fast training path.

* :func:`encoder_layer`: one pre-norm transformer encoder layer written out over
  ``nn.TransformerEncoderLayer``'s weights (what torch's layer computes in eval mode);
* :func:`dropout` and :class:`FastDropout`: inverted dropout whose CPU mask is cheaper
  to draw than ``bernoulli_``.

Measured with ``torch.profiler`` on this project's network (d_model 32, 4 heads,
batch 256, one CPU thread); ``python -m benchmarks training`` prints the effect.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FLASH_MIN_TOKENS", "MASK_LEVELS", "FastDropout", "dropout", "encoder_layer"]

#: From this many tokens on, CPU attention uses ``F.scaled_dot_product_attention`` (measured, forward and
#: backward: equal to two ``bmm`` at 46 tokens, 2.3x faster at 103, slower at 20; d_model 32, 4 heads, batch 256).
FLASH_MIN_TOKENS = 64
#: Dropout masks are drawn as 16-bit integers: ``p`` is rounded to a multiple of 1 / 65536.
MASK_LEVELS = 65536


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1 / (1 - p)``.

    On CPU the mask comes from 64-bit words of the global torch generator
    (``random_`` over the full int64 range, 4 random 16-bit lanes per word), each
    lane compared with ``p`` rounded to a multiple of 1/65536 (0.3 becomes
    0.300003): about 3x cheaper for a forward and backward pass than the
    per-element ``bernoulli_`` behind ``F.dropout``, which costs more than the
    matrix products of a network this small (``torch.profiler``: 35-40 % of a
    training step). On other devices it is ``F.dropout``. No random number is
    drawn when ``p == 0`` or in eval mode.
    """
    if p == 0.0 or not training:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    dropped = round(p * MASK_LEVELS)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # uniform over all 64 bits
    lanes = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    keep = (lanes >= dropped - MASK_LEVELS // 2).to(x.dtype).mul_(MASK_LEVELS / (MASK_LEVELS - dropped))
    return x * keep  # (same shape as x), 0 or 1 / (1 - p)


class FastDropout(nn.Module):
    """``nn.Dropout`` with the faster CPU mask of :func:`dropout` (no parameters, same ``state_dict``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


def encoder_layer(layer: nn.TransformerEncoderLayer, x: Tensor, p: float, training: bool) -> Tensor:
    """One pre-norm encoder layer, ``(batch, n, d_model) -> (batch, n, d_model)``, with ``layer``'s weights.

    The same function as ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu")``
    (self-attention block then feed-forward block, each on a layer-normed input and
    added to the residual) except for one dropout site: dropout ``p`` applies to both
    block outputs and the feed-forward hidden layer, NOT to the attention
    probabilities, the only mask that grows with the square of the number of tokens
    (at 46 tokens it cost more than the rest of a fine-tuning step). In eval mode it
    equals torch's layer. Written out so that a CPU step avoids what costs most at
    this size: the softmax scale is folded into the query projection, q/k/v come out
    of one projection with one layout copy, and attention is two batched matrix
    products (from :data:`FLASH_MIN_TOKENS` tokens, and on CUDA,
    ``F.scaled_dot_product_attention``: 2x faster at 100 tokens). With ``p == 0`` no
    random number is drawn.
    """
    batch, n, d = x.shape
    attention = layer.self_attn
    heads = attention.num_heads
    head_dim = d // heads
    scale = head_dim**-0.5
    in_weight, in_bias = attention.in_proj_weight, attention.in_proj_bias  # (3 d, d), (3 d,)
    weight = torch.cat([in_weight[:d] * scale, in_weight[d:]])  # softmax scale folded into the queries
    bias = torch.cat([in_bias[:d] * scale, in_bias[d:]])
    h = F.layer_norm(x, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
    qkv = F.linear(h, weight, bias).view(batch, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (3, b, H, n, dh)
    if x.device.type == "cpu" and n < FLASH_MIN_TOKENS:
        q, k, v = qkv.reshape(3, batch * heads, n, head_dim).unbind(0)  # each (b * H, n, dh)
        probs = torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)  # (b * H, n, n)
        context = torch.bmm(probs, v).view(batch, heads, n, head_dim)  # (b, H, n, dh)
    else:
        q, k, v = qkv.unbind(0)  # each (b, H, n, dh)
        context = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (b, H, n, dh)
    context = context.transpose(1, 2).reshape(batch, n, d)  # (b, n, d)
    x = x + dropout(F.linear(context, attention.out_proj.weight, attention.out_proj.bias), p, training)
    h = F.layer_norm(x, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
    h = dropout(F.gelu(F.linear(h, layer.linear1.weight, layer.linear1.bias)), p, training)  # (b, n, ff)
    return x + dropout(F.linear(h, layer.linear2.weight, layer.linear2.bias), p, training)  # (b, n, d)
