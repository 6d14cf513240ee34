"""Train the kjv-tiny Llama on the encoded King James Bible and write a Hugging Face checkpoint.

usage: train.py <data-dir> <tokenizer-dir> <out-dir> [--minutes 50] [--hidden 320] [--layers 8] ...
<data-dir> holds train.bin / heldout.bin (uint16 ids, each chapter wrapped in <s>=0 ... </s>=1) and
heldout.txt (for the byte count of bits per byte). Writes model.safetensors, config.json,
generation_config.json, the tokenizer files, train_log.csv and summary.json into <out-dir>.
"""
import argparse
import json
import math
import os
import shutil
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("tokenizer"); p.add_argument("out")
p.add_argument("--minutes", type=float, default=50)
p.add_argument("--hidden", type=int, default=320)
p.add_argument("--layers", type=int, default=8)
p.add_argument("--heads", type=int, default=10)
p.add_argument("--kv-heads", type=int, default=2)
p.add_argument("--intermediate", type=int, default=864)
p.add_argument("--seq", type=int, default=256)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--untied", dest="tie", action="store_false", help="separate lm_head (default: tied to the embeddings)")
p.add_argument("--dropout", type=float, default=0.2, help="dropout on the attention and MLP outputs")
p.add_argument("--average", type=float, default=0.999,
               help="ship an exponential moving average of the weights, with this decay (0: the last weights)")
p.add_argument("--average-start", type=float, default=0.4, help="fraction of the time budget after which the average starts")
p.add_argument("--weights", choices=("fp16", "fp32"), default="fp16",
               help="precision the weights are shipped in: fp16 rounds them before the final evaluation and export")
p.add_argument("--fp32", dest="bf16", action="store_false",
               help="train in fp32 (default: bfloat16 autocast for the training step, weights stay fp32)")
p.add_argument("--probe", action="store_true", help="measure throughput for 30 s and exit")
p.add_argument("--profile", action="store_true", help="print an operator profile of 5 steps and exit")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
os.makedirs(args.out, exist_ok=True)

train = torch.from_numpy(np.fromfile(os.path.join(args.data, "train.bin"), dtype="<u2").astype(np.int64))
heldout = torch.from_numpy(np.fromfile(os.path.join(args.data, "heldout.bin"), dtype="<u2").astype(np.int64))
with open(os.path.join(args.data, "heldout.txt"), encoding="utf-8") as f:
    heldout_bytes = sum(len(line.rstrip("\n").encode("utf-8")) for line in f)
tok = json.load(open(os.path.join(args.tokenizer, "tokenizer.json"), encoding="utf-8"))
vocab = len(tok["model"]["vocab"])
head_dim = args.hidden // args.heads
print(f"train {len(train)} tokens, heldout {len(heldout)} tokens / {heldout_bytes} bytes, vocab {vocab}", flush=True)


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        h, kv = args.hidden, args.kv_heads * head_dim
        self.input_layernorm = RMSNorm(h)
        self.q_proj = nn.Linear(h, h, bias=False)
        self.k_proj = nn.Linear(h, kv, bias=False)
        self.v_proj = nn.Linear(h, kv, bias=False)
        self.o_proj = nn.Linear(h, h, bias=False)
        self.post_attention_layernorm = RMSNorm(h)
        self.gate_proj = nn.Linear(h, args.intermediate, bias=False)
        self.up_proj = nn.Linear(h, args.intermediate, bias=False)
        self.down_proj = nn.Linear(args.intermediate, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        kv, rep = args.kv_heads, args.heads // args.kv_heads  # query head i uses kv head i // rep (HF repeat_kv)
        y = self.input_layernorm(x)
        q = self.q_proj(y).view(b, t, args.heads, head_dim).transpose(1, 2)
        k = self.k_proj(y).view(b, t, kv, head_dim).transpose(1, 2)
        v = self.v_proj(y).view(b, t, kv, head_dim).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin) * (1.0 / math.sqrt(head_dim))
        k = k * cos + rotate_half(k) * sin
        # The rep query heads of one kv head attend as one taller matrix: no copies of k and v.
        att = (q.reshape(b, kv, rep * t, head_dim) @ k.transpose(-1, -2)).view(b, kv, rep, t, t) + mask
        y = att.softmax(-1).view(b, kv, rep * t, t) @ v
        y = y.view(b, args.heads, t, head_dim).transpose(1, 2).reshape(b, t, args.hidden)
        x = x + F.dropout(self.o_proj(y), args.dropout, self.training)
        y = self.post_attention_layernorm(x)
        return x + F.dropout(self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y)), args.dropout, self.training)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, args.hidden)
        self.layers = nn.ModuleList(Layer() for _ in range(args.layers))
        self.norm = RMSNorm(args.hidden)
        self.lm_head = nn.Linear(args.hidden, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
        if args.tie:
            self.lm_head.weight = self.embed_tokens.weight
        for layer in self.layers:  # scaled init of residual outputs
            nn.init.normal_(layer.o_proj.weight, std=0.02 / math.sqrt(2 * args.layers))
            nn.init.normal_(layer.down_proj.weight, std=0.02 / math.sqrt(2 * args.layers))
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.cache = {}  # (sequence length, dtype) -> (cos, sin, causal mask)

    def forward(self, ids):
        t = ids.shape[1]
        dtype = torch.bfloat16 if torch.is_autocast_cpu_enabled() else torch.float32  # keep bf16 activations bf16
        if (t, dtype) not in self.cache:
            freqs = torch.outer(torch.arange(t).float(), self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            mask = torch.full((t, t), float("-inf")).triu(1)
            self.cache[t, dtype] = emb.cos()[None, None].to(dtype), emb.sin()[None, None].to(dtype), mask.to(dtype)
        cos, sin, mask = self.cache[t, dtype]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


model = Model()
n_params = sum(p.numel() for p in model.parameters())
print(f"parameters: {n_params:,}", flush=True)
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=args.lr, betas=(0.9, 0.95))


class CrossEntropy(torch.autograd.Function):
    """Mean token cross-entropy from log-sum-exp in fp32 (PyTorch 1.13's CPU log_softmax is several times slower)."""

    @staticmethod
    def forward(ctx, logits, target):
        x = logits.float()
        lse = torch.logsumexp(x, -1)
        ctx.save_for_backward(x, lse, target)
        ctx.dtype = logits.dtype
        return (lse - x.gather(-1, target[:, None])[:, 0]).mean()

    @staticmethod
    def backward(ctx, grad):
        x, lse, target = ctx.saved_tensors
        p = (x - lse[:, None]).exp_()  # softmax
        p.scatter_add_(-1, target[:, None], torch.full_like(lse[:, None], -1.0))
        return p.mul_(grad / x.shape[0]).to(ctx.dtype), None


def loss_of(x, y):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        logits = model(x)
    return CrossEntropy.apply(logits.reshape(-1, vocab), y.reshape(-1))


def batch():
    starts = rng.integers(0, len(train) - args.seq - 1, size=args.batch)
    x = torch.stack([train[s:s + args.seq + 1] for s in starts])
    return x[:, :-1], x[:, 1:]


@torch.no_grad()
def evaluate():
    """Summed NLL (nats) over held-out tokens in disjoint windows; every token after the first is predicted once."""
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(heldout) - 1, args.seq):
        chunk = heldout[s:s + args.seq + 1]
        if len(chunk) < 2:
            break
        logits = model(chunk[None, :-1])
        total += F.cross_entropy(logits[0], chunk[1:], reduction="sum").item()
        count += len(chunk) - 1
    model.train()
    return total, count


def bits_per_byte(nll):
    return nll / math.log(2) / heldout_bytes


if args.profile:
    from torch.profiler import profile
    for i in range(8):
        if i == 3:
            prof = profile(); prof.__enter__()
        loss = loss_of(*batch())
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    prof.__exit__(None, None, None)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    raise SystemExit(0)

params = list(model.parameters())
average = None  # the moving average of the weights, started at --average-start of the budget
averaged_steps = 0


def swap_average():
    """Exchange the live weights with their moving average (call twice to undo)."""
    for p, a in zip(params, average):
        tmp = p.detach().clone(); p.data.copy_(a); a.copy_(tmp)


budget = args.minutes * 60 if not args.probe else 30
log = open(os.path.join(args.out, "train_log.csv"), "w")
log.write("step,seconds,tokens,lr,loss_ema,heldout_loss,heldout_bpb,average_heldout_loss,average_heldout_bpb\n")
start = time.time()
step, ema, tokens = 0, None, 0
next_eval = 300
while True:
    elapsed = time.time() - start
    if elapsed >= budget:
        break
    progress = elapsed / budget
    lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
    for g in opt.param_groups:
        g["lr"] = lr
    x, y = batch()
    loss = loss_of(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if args.average and progress >= args.average_start:
        if average is None:
            average = [p.detach().clone() for p in params]
        averaged_steps += 1
        decay = min(args.average, averaged_steps / (averaged_steps + 1))  # a plain mean until the decay takes over
        with torch.no_grad():
            for p, a in zip(params, average):
                a.mul_(decay).add_(p.detach(), alpha=1 - decay)
    step += 1
    tokens += x.numel()
    ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
    held, bpb, avg_held, avg_bpb = "", "", "", ""
    if elapsed >= next_eval and not args.probe:
        nll, n = evaluate()
        held, bpb = f"{nll / n:.4f}", f"{bits_per_byte(nll):.4f}"
        if average is not None:
            swap_average(); nll, n = evaluate(); swap_average()
            avg_held, avg_bpb = f"{nll / n:.4f}", f"{bits_per_byte(nll):.4f}"
        next_eval += 300
    if step % 20 == 0 or held:
        log.write(f"{step},{elapsed:.1f},{tokens},{lr:.6f},{ema:.4f},{held},{bpb},{avg_held},{avg_bpb}\n"); log.flush()
    if step % 50 == 0 or held:
        print(f"step {step} {elapsed:.0f}s {tokens / max(elapsed, 1e-9):.0f} tok/s lr {lr:.5f} loss {ema:.4f} {('heldout ' + held + ' bpb ' + bpb) if held else ''}{(' average ' + avg_held + ' bpb ' + avg_bpb) if avg_held else ''}", flush=True)

elapsed = time.time() - start
print(f"done: {step} steps, {tokens} tokens, {elapsed:.0f} s, {tokens / elapsed:.0f} tok/s", flush=True)
if args.probe:
    raise SystemExit(0)

last_nll, n = evaluate()
last_bpb = bits_per_byte(last_nll)
print(f"heldout, last weights: loss {last_nll / n:.4f} bits/byte {last_bpb:.4f}", flush=True)
if average is not None:
    swap_average()
if args.weights == "fp16":  # evaluate exactly what ships: the ONNX file stores fp16 weights (computed in fp32)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
nll = evaluate()[0] if average is not None or args.weights == "fp16" else last_nll  # the shipped weights differ?
bpb = bits_per_byte(nll)
print(f"heldout: loss {nll / n:.4f} ppl {math.exp(nll / n):.2f} bits/byte {bpb:.4f}", flush=True)
log.write(f"{step},{elapsed:.1f},{tokens},0,{ema:.4f},{last_nll / n:.4f},{last_bpb:.4f},{nll / n:.4f},{bpb:.4f}\n")
log.close()

# Hugging Face checkpoint: safetensors written by hand (u64 LE header length, JSON header, F32 data in name order).
state = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
if not args.tie:
    state["lm_head.weight"] = model.lm_head.weight
for i, layer in enumerate(model.layers):
    pre = f"model.layers.{i}."
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        state[pre + f"self_attn.{name}.weight"] = getattr(layer, name).weight
    for name in ("gate_proj", "up_proj", "down_proj"):
        state[pre + f"mlp.{name}.weight"] = getattr(layer, name).weight
    state[pre + "input_layernorm.weight"] = layer.input_layernorm.weight
    state[pre + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
for name in sorted(state):
    data = state[name].detach().contiguous().float().numpy().astype("<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(state[name].shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data); offset += len(data)
head = json.dumps(header, separators=(",", ":")).encode()
head += b" " * ((8 - len(head) % 8) % 8)
with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(head))); f.write(head)
    for b in blobs:
        f.write(b)

config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": args.hidden,
          "intermediate_size": args.intermediate, "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
          "head_dim": head_dim, "num_hidden_layers": args.layers, "vocab_size": vocab, "max_position_embeddings": args.seq,
          "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "hidden_act": "silu", "attention_bias": False,
          "mlp_bias": False, "tie_word_embeddings": args.tie, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": None,
          "torch_dtype": "float32", "use_cache": True}
json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)
json.dump({"bos_token_id": 0, "eos_token_id": 1}, open(os.path.join(args.out, "generation_config.json"), "w"), indent=2)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(args.tokenizer, name), os.path.join(args.out, name))

summary = {"parameters": n_params, "averaged_steps": averaged_steps,
           "heldout_bits_per_byte_last_weights_fp32": round(last_bpb, 4), "steps": step, "tokens_seen": tokens, "seconds": round(elapsed, 1),
           "tokens_per_second": round(tokens / elapsed), "train_loss_ema": round(ema, 4),
           "heldout_tokens": n, "heldout_bytes": heldout_bytes, "heldout_loss": round(nll / n, 4),
           "heldout_perplexity": round(math.exp(nll / n), 3), "heldout_bits_per_byte": round(bpb, 4),
           "args": vars(args)}
json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=2)

print(json.dumps(summary, indent=2), flush=True)
