"""Train a tiny LLaMA-architecture character-level model on the King James Bible and write the
demo model folder samples/HssEe.Demo/Model/ (config.json, model.safetensors, vocab.json,
reference.safetensors, README.md).

    /usr/bin/python3 tools/reference/train_char_llama.py [--steps 1600] [--minutes 12] [--out DIR]

Text: the `bible` command of Debian's bible-kjv package (data from bible-kjv-text):
`bible -f -l100000 Gen1:1-Rev22:21` prints one verse per line as "Ge1:1 In the beginning ...".
The reference ("Ge1:1 ") is dropped, the verses of a chapter are joined with a space, and each
chapter ends with "\\n", so the text reads as prose. (--text FILE uses that prepared text instead.)
Vocabulary = the characters that occur (case kept), sorted by code point; the last 5% of the
text (the end of the New Testament) is held out for validation.

Model: tools/reference/llama_ref.py (HF LlamaForCausalLM semantics), hidden 128, intermediate
344, 4 layers, 4 heads, 2 KV heads, RoPE theta 10000, untied head. Training: AdamW, context
128, batch 32, a fixed number of steps (deterministic for a given torch/BLAS build) with a
wall-clock cap as a safety stop, one thread.

Speed note: Debian's torch links the reference (netlib) BLAS, about 9x slower than OpenBLAS here.
The committed model was trained with Debian's OpenBLAS (serial) library put in front:
    apt-get download libopenblas0-serial && dpkg-deb -x libopenblas0-serial_*.deb /tmp/oblas
    LD_LIBRARY_PATH=/tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-serial /usr/bin/python3 ...
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import llama_ref  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "samples", "HssEe.Demo", "Model")
PROMPT = "And God said, "
N_GREEDY = 64
SAMPLE_T = 0.8
SAMPLE_LEN = 240
VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


def kjv_text():
    raw = subprocess.run(["bible", "-f", "-l100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).stdout
    chapters, cur, key = [], [], None
    n_verses = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        m = VERSE.match(line)
        if not m:
            raise ValueError("unexpected line: %r" % line[:80])
        book, chap, _, text = m.groups()
        if (book, chap) != key and cur:
            chapters.append(" ".join(cur))
            cur = []
        key = (book, chap)
        cur.append(" ".join(text.split()))
        n_verses += 1
    if cur:
        chapters.append(" ".join(cur))
    return "".join(c + "\n" for c in chapters), n_verses, len(chapters)


def lr_at(step, total, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor * peak + (1 - floor) * peak * 0.5 * (1 + math.cos(math.pi * p))


@torch.no_grad()
def eval_windows(model, data, starts, ctx, batch):
    """Mean next-token NLL (nats/char) over windows data[s : s+ctx+1]."""
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(starts), batch):
        idx = starts[i:i + batch]
        x = torch.stack([data[s:s + ctx + 1] for s in idx])
        logits = model(x[:, :-1])
        tot += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"))
        n += x[:, 1:].numel()
    model.train()
    return tot / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--text", default=None, help="use this prepared UTF-8 text instead of running `bible`")
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-clock cap on the training loop")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1611)  # the KJV's year
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.time()

    if args.text:
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
        n_verses = n_chapters = None
    else:
        text, n_verses, n_chapters = kjv_text()
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n_val = len(data) // 20
    train, val = data[:-n_val], data[-n_val:]
    print("text: %d chars, %s verses, %s chapters, vocab %d, train %d, val %d"
          % (len(text), n_verses, n_chapters, len(vocab), len(train), len(val)), flush=True)

    cfg = llama_ref.default_config(
        vocab_size=len(vocab), hidden_size=128, intermediate_size=344, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=256, tie_word_embeddings=False, torch_dtype="float32")

    torch.manual_seed(args.seed)
    model = llama_ref.LlamaForCausalLM(cfg)
    std = cfg["initializer_range"]
    for name, p in model.named_parameters():  # HF LlamaPreTrainedModel._init_weights
        if p.dim() == 2:
            torch.nn.init.normal_(p, 0.0, std)
        else:
            torch.nn.init.ones_(p)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    gen = torch.Generator().manual_seed(args.seed)
    ctx, B = args.ctx, args.batch
    val_starts = list(range(0, len(val) - ctx - 1, ctx))           # all of it, non-overlapping
    probe_val = val_starts[:: max(1, len(val_starts) // 256)][:256]  # quick progress estimate
    probe_train = torch.randint(0, len(train) - ctx - 1, (512,), generator=torch.Generator().manual_seed(7)).tolist()

    print("model: %d parameters; %d steps of %dx%d, lr %g, cap %.1f min"
          % (n_params, args.steps, B, ctx, args.lr, args.minutes), flush=True)
    t0 = time.time()
    hist = []
    running = None
    step = 0
    stopped_early = False
    for step in range(args.steps):
        if time.time() - t0 > args.minutes * 60:
            stopped_early = True
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup, 0.1)
        starts = torch.randint(0, len(train) - ctx - 1, (B,), generator=gen)
        x = torch.stack([train[s:s + ctx + 1] for s in starts.tolist()])
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
        if step % 50 == 0 or step == args.steps - 1:
            msg = "step %5d  loss %.4f  avg %.4f  lr %.2e  %6.1fs" % (step, float(loss), running,
                                                                      opt.param_groups[0]["lr"], time.time() - t0)
            if step % 250 == 0 or step == args.steps - 1:
                vl = eval_windows(model, val, probe_val, ctx, 64)
                hist.append((step, running, vl))
                msg += "  val~ %.4f" % vl
            print(msg, flush=True)
    steps_done = step if stopped_early else args.steps
    train_time = time.time() - t0
    print("trained %d steps in %.1f s%s" % (steps_done, train_time, " (wall-clock cap hit)" if stopped_early else ""),
          flush=True)

    model.eval()
    val_loss = eval_windows(model, val, val_starts, ctx, 64)
    train_loss = eval_windows(model, train, probe_train, ctx, 64)
    print("final: train %.4f (512 random windows)  val %.4f (all %d windows)" % (train_loss, val_loss, len(val_starts)),
          flush=True)

    # ---- write the model folder; reload the weights from the file for the reference outputs
    os.makedirs(args.out, exist_ok=True)
    sd = {k: (v.detach().numpy(), "F32") for k, v in model.state_dict().items()}
    mpath = os.path.join(args.out, "model.safetensors")
    save_file(sd, mpath, metadata={"format": "pt"})
    ref_model = llama_ref.LlamaForCausalLM(cfg)
    ref_model.load_state_dict({k: torch.from_numpy(v) for k, v in load_file(mpath).items()}, strict=True)
    ref_model.eval()
    cfg_out = dict(cfg)
    cfg_out["bos_token_id"] = None
    cfg_out["eos_token_id"] = None
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(cfg_out, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(vocab, f, ensure_ascii=True)
        f.write("\n")

    prompt_ids = [stoi[c] for c in PROMPT]
    with torch.no_grad():
        prompt_logits = ref_model(torch.tensor([prompt_ids]))[0]
    greedy_ids, margins = llama_ref.greedy(ref_model, prompt_ids, N_GREEDY)
    greedy_text = "".join(vocab[i] for i in greedy_ids)
    save_file({"prompt_ids": (np.array(prompt_ids, dtype=np.int64), "I64"),
               "greedy_ids": (np.array(greedy_ids, dtype=np.int64), "I64"),
               "prompt_logits": (prompt_logits.numpy(), "F32")},
              os.path.join(args.out, "reference.safetensors"),
              metadata={"prompt": PROMPT, "generator": "tools/reference/train_char_llama.py"})
    # A temperature-sampled continuation, for the README only (greedy decoding of a small
    # character model falls into loops; sampling shows what the model learnt).
    sgen = torch.Generator().manual_seed(args.seed)
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(SAMPLE_LEN):
            logits = ref_model(torch.tensor([ids[-ctx:]]))[0, -1]  # window = training context
            probs = torch.softmax(logits / SAMPLE_T, dim=-1)
            ids.append(int(torch.multinomial(probs, 1, generator=sgen)))
    sampled_text = "".join(vocab[i] for i in ids[len(prompt_ids):])
    print("sampled (T=%.1f): %r" % (SAMPLE_T, sampled_text), flush=True)
    total_time = time.time() - t_start
    print("prompt %r -> %r" % (PROMPT, greedy_text), flush=True)
    print("min top-1/top-2 logit gap over the greedy steps: %.4f; max |prompt_logits| %.3f"
          % (min(margins), float(prompt_logits.abs().max())), flush=True)

    blas = torch.__config__.show()
    blas_lib = "unknown"
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "blas" in ln.lower() and ".so" in ln})
        blas_lib = ", ".join(libs) if libs else "none mapped"
    except OSError:
        pass
    hist_txt = "\n".join("| %d | %.4f | %.4f |" % h for h in hist)
    sample_md = greedy_text.replace("\n", "\\n")
    sampled_md = sampled_text.replace("\n", " / ")
    readme = f"""# Character-level LLaMA trained on the King James Bible

Made by `tools/reference/train_char_llama.py` (run from the repository root with
`/usr/bin/python3`, torch {torch.__version__}, one thread, seed {args.seed}); nothing here is
run by CI.

## Files

- `config.json`: Hugging Face `LlamaConfig` keys (`LlamaForCausalLM`): vocab {len(vocab)},
  hidden 128, intermediate 344, 4 layers, 4 heads, 2 KV heads (head_dim 32), rope_theta 10000,
  rms_norm_eps 1e-5, max_position_embeddings 256, untied `lm_head`. Trained on windows of
  {ctx + 1} characters, so positions 0..{ctx - 1} are the ones it has seen: beyond {ctx} tokens the
  output degrades (RoPE does not extrapolate); slide a {ctx}-token window for longer text.
- `model.safetensors`: F32, Hugging Face tensor names (`model.embed_tokens.weight`,
  `model.layers.{{i}}.self_attn.q_proj.weight`, ..., `model.norm.weight`, `lm_head.weight`,
  Linear layout [out, in]); {n_params} parameters.
- `vocab.json`: JSON array of the {len(vocab)} characters; index = token id. `"\\n"` ends a chapter.
- `reference.safetensors`: `prompt_ids` I64 [{len(prompt_ids)}] = {json.dumps(PROMPT)},
  `greedy_ids` I64 [{N_GREEDY}] (greedy continuation, float32, whole sequence re-run at every
  step, no KV cache), `prompt_logits` F32 [{len(prompt_ids)}, {len(vocab)}] (logits at every prompt
  position). Computed with the weights as read back from `model.safetensors`.

## Data

King James Bible from Debian's `bible-kjv-text` (read with `bible -f -l100000 Gen1:1-Rev22:21`
from `bible-kjv`): {n_verses} verses, {n_chapters} chapters. Verse references dropped, the verses of a
chapter joined by a space, one chapter per line: {len(text)} characters. Vocabulary: every character
that occurs, case kept, sorted by code point. The last 5% ({len(val)} characters, the end of the
New Testament) is held out for validation; training uses the first {len(train)}.

## Training

AdamW (betas 0.9/0.95, eps 1e-8, weight decay {args.weight_decay} on matrices only), peak lr {args.lr},
linear warm-up {args.warmup} steps then cosine decay to 10% of the peak at step {args.steps}, gradient
clipping 1.0, batch {B} random windows of {ctx + 1} characters (context {ctx}), float32, HF init
(normal std {std} for matrices, ones for norms). {steps_done} steps
({'stopped by the wall-clock cap of %.1f minutes' % args.minutes if stopped_early else 'the fixed step count; the %.1f-minute wall-clock cap was not reached' % args.minutes}),
{steps_done * B * ctx / 1e6:.2f} M training characters, training loop {train_time:.0f} s; whole script
{total_time:.0f} s. BLAS in use: {blas_lib} (Debian's torch build defaults to the reference
netlib BLAS, about 9x slower; the model was trained with Debian's OpenBLAS serial library put in
front with LD_LIBRARY_PATH, see the script's docstring). The result is deterministic for a given
torch + BLAS build.

| step | train loss (running avg, nats/char) | validation loss (256-window probe) |
| --- | --- | --- |
{hist_txt}

Final: **train {train_loss:.4f}** nats/char (512 random training windows), **validation
{val_loss:.4f}** nats/char (all {len(val_starts)} non-overlapping 128-character windows of the held-out
text).

## Greedy sample

Prompt {json.dumps(PROMPT)}, {N_GREEDY} greedy tokens:

> {PROMPT}{sample_md}

Smallest top-1 minus top-2 logit gap over the {N_GREEDY} greedy steps: {min(margins):.4f}
(step {int(np.argmin(margins))}); a fixed-point re-implementation can only disagree with this
continuation where that gap is below its error. Max |prompt_logits| = {float(prompt_logits.abs().max()):.3f}.
Greedy decoding of a small character model falls into such generic, repetitive phrases; for
comparison, {SAMPLE_LEN} characters sampled at temperature {SAMPLE_T} (torch.multinomial, generator seed
{args.seed}, each step sees the last {ctx} characters at positions 0..{ctx - 1}, as in training;
not stored in `reference.safetensors`):

> {PROMPT}{sampled_md}
"""
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(readme)
    print("wrote %s (%.1f s total)" % (args.out, total_time), flush=True)
    del blas


if __name__ == "__main__":
    main()
