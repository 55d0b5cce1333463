"""PyTorch side of `npm run bench:model` (test/bench/model.bench.ts runs it; it is not part of rxrl).

The same reference model as rxrl's `CausalLM({ arch: 'gpt2', ... })`, written out by hand the
nanoGPT way: pre-LN blocks, GELU (tanh), learned positions, tied embeddings, biases on every
linear and LayerNorm, causal softmax attention (no fused SDPA: PyTorch 1.13 has none).
One training step = forward, loss = mean next-token cross-entropy, backward, Adam update.
Timed as the median over --steps steps after --warmup steps, on --threads intra-op threads.

Prints one JSON line: {"torch", "threads", "params", "ms_median", "ms_min", "ms_all", "peak_rss_mb",
"loss" (last step), "first_loss"}.

    /usr/bin/python3 test/bench/model_torch.py --threads 1 --steps 20
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, n_heads, d_ff, eps):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.up = nn.Linear(d, d_ff)
        self.down = nn.Linear(d_ff, d)

    def attention(self, x, mask):
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = self.qkv(x).split(D, dim=2)
        q = q.view(B, T, H, D // H).transpose(1, 2)  # [B, H, T, d]
        k = k.view(B, T, H, D // H).transpose(1, 2)
        v = v.view(B, T, H, D // H).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H))
        probs = F.softmax(scores.masked_fill(mask[:T, :T], float("-inf")), dim=-1)
        y = (probs @ v).transpose(1, 2).contiguous().view(B, T, D)
        return self.o(y)

    def forward(self, x, mask):
        x = x + self.attention(self.ln1(x), mask)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, d, n_layers, n_heads, max_pos, eps=1e-5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos_embed = nn.Embedding(max_pos, d)
        self.layers = nn.ModuleList([Block(d, n_heads, 4 * d, eps) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d, eps=eps)
        future = torch.triu(torch.ones(max_pos, max_pos, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", future, persistent=False)
        # GPT-2 init, as rxrl's Transformer: N(0, 0.02²), residual projections 0.02/√(2L)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln" in name or name.startswith("norm"):
                nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("o.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.embed(tokens) + self.pos_embed(torch.arange(T, device=tokens.device))
        for block in self.layers:
            h = block(h, self.mask)
        return self.norm(h) @ self.embed.weight.t()  # tied LM head, no bias


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=60)
    ap.add_argument("--max-pos", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(args.vocab, args.d, args.layers, args.heads, args.max_pos)
    # tf.train.adam's defaults: β = (0.9, 0.999), ε = 1e-7
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7)
    seq = torch.randint(0, args.vocab, (args.batch, args.context + 1))
    x, y = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, args.vocab), y.view(-1))
        loss.backward()
        opt.step()
        return loss.item()

    first_loss = step()
    for _ in range(args.warmup - 1):
        step()
    times = []
    loss = float("nan")
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1000)
    s = sorted(times)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "ms_median": s[len(s) // 2],
        "ms_min": s[0],
        "ms_all": [round(t, 2) for t in times],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": loss,
        "first_loss": first_loss,
    }))


if __name__ == "__main__":
    main()
