"""Reference LLaMA in PyTorch, written to follow Hugging Face ``LlamaForCausalLM`` exactly
(float32, eager attention, no biases, no rope scaling, no KV cache).

The module tree reproduces HF's state-dict names:

    model.embed_tokens.weight                         [vocab, hidden]
    model.layers.{i}.input_layernorm.weight           [hidden]
    model.layers.{i}.self_attn.q_proj.weight          [heads*hd, hidden]
    model.layers.{i}.self_attn.k_proj.weight          [kv_heads*hd, hidden]
    model.layers.{i}.self_attn.v_proj.weight          [kv_heads*hd, hidden]
    model.layers.{i}.self_attn.o_proj.weight          [hidden, heads*hd]
    model.layers.{i}.post_attention_layernorm.weight  [hidden]
    model.layers.{i}.mlp.gate_proj.weight             [intermediate, hidden]
    model.layers.{i}.mlp.up_proj.weight               [intermediate, hidden]
    model.layers.{i}.mlp.down_proj.weight             [hidden, intermediate]
    model.norm.weight                                 [hidden]
    lm_head.weight                                    [vocab, hidden]   (PyTorch Linear: [out, in])

Computation (HF modeling_llama):
    RMSNorm(x)  = weight * (x * rsqrt(mean(x^2, -1) + eps))            (in float32)
    inv_freq    = 1 / theta^(arange(0, hd, 2) / hd);  freqs = pos * inv_freq
    cos, sin    = cos(cat(freqs, freqs)), sin(cat(freqs, freqs))
    rope(x)     = x * cos + rotate_half(x) * sin,  rotate_half(x) = cat(-x[hd/2:], x[:hd/2])
    attention   : head h uses kv head h // (heads / kv_heads) (repeat_kv);
                  softmax(q k^T / sqrt(hd) + causal_mask) v  (softmax in float32)
    MLP         = down(silu(gate(x)) * up(x))
    layer       : h = h + attn(input_layernorm(h)); h = h + mlp(post_attention_layernorm(h))
    logits      = lm_head(norm(h))
"""

import math

import torch
from torch import nn
import torch.nn.functional as F


def default_config(**overrides):
    cfg = dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=61,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        hidden_act="silu",
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        rope_scaling=None,
        attention_bias=False,
        attention_dropout=0.0,
        mlp_bias=False,
        tie_word_embeddings=False,
        initializer_range=0.02,
        pretraining_tp=1,
        use_cache=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        torch_dtype="float32",
    )
    cfg.update(overrides)
    cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    return cfg


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


def rope_cos_sin(positions, head_dim, theta, dtype=torch.float32):
    """positions: LongTensor [S]. Returns cos, sin of shape [S, head_dim] (HF convention)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    # q, k: [B, H, S, hd]; cos, sin: [S, hd]
    cos = cos[None, None]
    sin = sin[None, None]
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(x, n_rep):
    b, nkv, s, hd = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, nkv, n_rep, s, hd).reshape(b, nkv * n_rep, s, hd)


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg["num_key_value_heads"]
        self.head_dim = self.hidden // self.n_heads
        self.theta = float(cfg["rope_theta"])
        self.q_proj = nn.Linear(self.hidden, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(self.hidden, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(self.hidden, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, self.hidden, bias=False)

    def forward(self, x, cos, sin):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = repeat_kv(k, self.n_heads // self.n_kv)
        v = repeat_kv(v, self.n_heads // self.n_kv)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        mask = torch.full((s, s), torch.finfo(scores.dtype).min, dtype=scores.dtype).triu(1)
        scores = scores + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, self.n_heads * self.head_dim)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, h, cos, sin):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin)
        h = h + self.mlp(self.post_attention_layernorm(h))
        return h


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert not cfg.get("tie_word_embeddings", False), "tied LLaMA heads are not needed here"
        self.cfg = dict(cfg)
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]

    def forward(self, input_ids, return_hidden=False):
        """input_ids: LongTensor [B, S] -> logits [B, S, V] (float32).
        return_hidden=True: also the list of residual streams after each decoder layer."""
        s = input_ids.shape[1]
        cos, sin = rope_cos_sin(torch.arange(s), self.head_dim, float(self.cfg["rope_theta"]))
        h = self.model.embed_tokens(input_ids)
        hidden = []
        for layer in self.model.layers:
            h = layer(h, cos, sin)
            hidden.append(h)
        logits = self.lm_head(self.model.norm(h))
        return (logits, hidden) if return_hidden else logits


@torch.no_grad()
def greedy(model, prompt_ids, n_new):
    """Greedy continuation without KV cache: each step re-runs the whole sequence."""
    ids = list(prompt_ids)
    margins = []
    for _ in range(n_new):
        logits = model(torch.tensor([ids], dtype=torch.long))[0, -1]
        top2 = torch.topk(logits, 2).values
        margins.append(float(top2[0] - top2[1]))
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt_ids):], margins
