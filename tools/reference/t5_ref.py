"""Reference T5 in PyTorch, written to follow Hugging Face ``T5ForConditionalGeneration``
exactly (float32, eval mode: no dropout, no KV cache, full attention masks = all ones).

State-dict names are HF's (the encoder/decoder embed_tokens are tied to ``shared`` and are
not separate tensors):

    shared.weight                                                   [vocab, d_model]
    encoder.block.{i}.layer.0.SelfAttention.{q,k,v}.weight         [heads*d_kv, d_model]
    encoder.block.{i}.layer.0.SelfAttention.o.weight               [d_model, heads*d_kv]
    encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   [buckets, heads]
    encoder.block.{i}.layer.0.layer_norm.weight                     [d_model]
    encoder.block.{i}.layer.1.DenseReluDense.wi.weight              [d_ff, d_model]      (relu)
    encoder.block.{i}.layer.1.DenseReluDense.wi_0/wi_1.weight       [d_ff, d_model]      (gated-gelu)
    encoder.block.{i}.layer.1.DenseReluDense.wo.weight              [d_model, d_ff]
    encoder.block.{i}.layer.1.layer_norm.weight                     [d_model]
    encoder.final_layer_norm.weight                                 [d_model]
    decoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight
    decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   [buckets, heads]
    decoder.block.{i}.layer.0.layer_norm.weight
    decoder.block.{i}.layer.1.EncDecAttention.{q,k,v,o}.weight
    decoder.block.{i}.layer.1.layer_norm.weight
    decoder.block.{i}.layer.2.DenseReluDense.{wi | wi_0, wi_1}.weight, .wo.weight
    decoder.block.{i}.layer.2.layer_norm.weight
    decoder.final_layer_norm.weight
    lm_head.weight                                                  [vocab, d_model]  (untied only)

Computation (HF modeling_t5):
    T5LayerNorm(x) = weight * (x * rsqrt(mean(x^2, -1) + eps))   (no mean subtraction, float32)
    attention      : scores = q k^T (NO 1/sqrt(d_kv)) + position_bias (+ mask); softmax (float32)
    position_bias  : relative_attention_bias[bucket(j - i)] per head, computed by block 0 and
                     reused by every block of the same stack; bidirectional buckets in the
                     encoder, unidirectional in decoder self-attention; cross-attention has none
    FFN            : relu:        wo(relu(wi(x)))
                     gated-gelu:  wo(gelu_new(wi_0(x)) * wi_1(x)),  gelu_new = tanh approximation
    block          : h = h + SelfAttn(ln0(h)); [decoder: h = h + CrossAttn(ln1(h), enc)]; h = h + FFN(ln(h))
    stacks end with final_layer_norm
    head           : tied:   logits = (dec * d_model^-0.5) @ shared^T
                     untied: logits = dec @ lm_head^T
"""

import math

import torch
from torch import nn
import torch.nn.functional as F


def default_config(variant, **overrides):
    """variant: "v1.0" (relu, tied head) or "v1.1" (gated-gelu, separate lm_head)."""
    if variant == "v1.0":
        ffp, tie = "relu", True
    elif variant == "v1.1":
        ffp, tie = "gated-gelu", False
    else:
        raise ValueError(variant)
    cfg = dict(
        architectures=["T5ForConditionalGeneration"],
        model_type="t5",
        vocab_size=64,
        d_model=64,
        d_kv=16,
        num_heads=4,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        layer_norm_epsilon=1e-6,
        feed_forward_proj=ffp,
        dense_act_fn="relu" if ffp == "relu" else "gelu_new",
        is_gated_act=(ffp != "relu"),
        tie_word_embeddings=tie,
        is_encoder_decoder=True,
        dropout_rate=0.0,
        initializer_factor=1.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        use_cache=True,
        torch_dtype="float16",
    )
    cfg.update(overrides)
    return cfg


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class T5LayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.variance_epsilon = eps

    def forward(self, h):
        variance = h.to(torch.float32).pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * h


def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """HF T5Attention._relative_position_bucket, verbatim."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
    )
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


class T5Attention(nn.Module):
    def __init__(self, cfg, is_decoder, has_relative_attention_bias):
        super().__init__()
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.n_heads = cfg["num_heads"]
        self.d_kv = cfg["d_kv"]
        self.num_buckets = cfg["relative_attention_num_buckets"]
        self.max_distance = cfg["relative_attention_max_distance"]
        d, inner = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"]
        self.q = nn.Linear(d, inner, bias=False)
        self.k = nn.Linear(d, inner, bias=False)
        self.v = nn.Linear(d, inner, bias=False)
        self.o = nn.Linear(inner, d, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, self.n_heads)

    def compute_bias(self, q_len, k_len):
        ctx = torch.arange(q_len, dtype=torch.long)[:, None]
        mem = torch.arange(k_len, dtype=torch.long)[None, :]
        buckets = relative_position_bucket(mem - ctx, not self.is_decoder, self.num_buckets, self.max_distance)
        values = self.relative_attention_bias(buckets)  # [q, k, heads]
        return values.permute(2, 0, 1).unsqueeze(0)  # [1, heads, q, k]

    def forward(self, x, kv=None, position_bias=None, mask=None):
        """x: [B, Sq, d]; kv: [B, Sk, d] for cross-attention (None: self-attention).
        position_bias: [1, H, Sq, Sk] or None (then computed if this layer has the table,
        else zeros). mask: additive [Sq, Sk] or None. Returns (out, position_bias incl. mask)."""
        b, sq, _ = x.shape
        src = x if kv is None else kv
        sk = src.shape[1]
        q = self.q(x).view(b, sq, self.n_heads, self.d_kv).transpose(1, 2)
        k = self.k(src).view(b, sk, self.n_heads, self.d_kv).transpose(1, 2)
        v = self.v(src).view(b, sk, self.n_heads, self.d_kv).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(3, 2))
        if position_bias is None:
            if self.has_relative_attention_bias:
                position_bias = self.compute_bias(sq, sk)
            else:
                position_bias = torch.zeros((1, self.n_heads, sq, sk), dtype=scores.dtype)
            if mask is not None:
                position_bias = position_bias + mask
        scores = scores + position_bias
        probs = F.softmax(scores.float(), dim=-1).type_as(scores)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, sq, self.n_heads * self.d_kv)
        return self.o(out), position_bias


class T5LayerSelfAttention(nn.Module):
    def __init__(self, cfg, is_decoder, has_bias):
        super().__init__()
        self.SelfAttention = T5Attention(cfg, is_decoder, has_bias)
        self.layer_norm = T5LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class T5LayerCrossAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.EncDecAttention = T5Attention(cfg, True, False)
        self.layer_norm = T5LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class T5DenseActDense(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wi = nn.Linear(cfg["d_model"], cfg["d_ff"], bias=False)
        self.wo = nn.Linear(cfg["d_ff"], cfg["d_model"], bias=False)

    def forward(self, x):
        return self.wo(F.relu(self.wi(x)))


class T5DenseGatedActDense(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wi_0 = nn.Linear(cfg["d_model"], cfg["d_ff"], bias=False)
        self.wi_1 = nn.Linear(cfg["d_model"], cfg["d_ff"], bias=False)
        self.wo = nn.Linear(cfg["d_ff"], cfg["d_model"], bias=False)

    def forward(self, x):
        return self.wo(gelu_new(self.wi_0(x)) * self.wi_1(x))


class T5LayerFF(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg["feed_forward_proj"] == "relu":
            self.DenseReluDense = T5DenseActDense(cfg)
        elif cfg["feed_forward_proj"] == "gated-gelu":
            self.DenseReluDense = T5DenseGatedActDense(cfg)
        else:
            raise ValueError(cfg["feed_forward_proj"])
        self.layer_norm = T5LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])

    def forward(self, h):
        return h + self.DenseReluDense(self.layer_norm(h))


class T5Block(nn.Module):
    def __init__(self, cfg, is_decoder, has_bias):
        super().__init__()
        self.is_decoder = is_decoder
        layers = [T5LayerSelfAttention(cfg, is_decoder, has_bias)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(cfg))
        layers.append(T5LayerFF(cfg))
        self.layer = nn.ModuleList(layers)

    def forward(self, h, self_bias, self_mask, enc=None, cross_bias=None):
        sa = self.layer[0]
        out, self_bias = sa.SelfAttention(sa.layer_norm(h), position_bias=self_bias, mask=self_mask)
        h = h + out
        if self.is_decoder:
            ca = self.layer[1]
            out, cross_bias = ca.EncDecAttention(ca.layer_norm(h), kv=enc, position_bias=cross_bias)
            h = h + out
        h = self.layer[-1](h)
        return h, self_bias, cross_bias


class T5Stack(nn.Module):
    def __init__(self, cfg, is_decoder):
        super().__init__()
        self.is_decoder = is_decoder
        n = cfg["num_decoder_layers"] if is_decoder else cfg["num_layers"]
        self.block = nn.ModuleList([T5Block(cfg, is_decoder, i == 0) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])

    def forward(self, embeds, enc=None):
        s = embeds.shape[1]
        mask = None
        if self.is_decoder:
            mask = torch.full((s, s), torch.finfo(embeds.dtype).min, dtype=embeds.dtype).triu(1)
        h = embeds
        self_bias, cross_bias = None, None
        for blk in self.block:
            h, self_bias, cross_bias = blk(h, self_bias, mask, enc, cross_bias)
        return self.final_layer_norm(h)


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        self.shared = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.encoder = T5Stack(cfg, False)
        self.decoder = T5Stack(cfg, True)
        self.tied = bool(cfg["tie_word_embeddings"])
        if not self.tied:
            self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def forward(self, input_ids, decoder_input_ids):
        """Returns (encoder_output [B, S, d], logits [B, T, V])."""
        enc = self.encoder(self.shared(input_ids))
        dec = self.decoder(self.shared(decoder_input_ids), enc=enc)
        if self.tied:
            logits = F.linear(dec * (self.cfg["d_model"] ** -0.5), self.shared.weight)
        else:
            logits = self.lm_head(dec)
        return enc, logits
