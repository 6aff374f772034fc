"""``perception benchmark pretrain``: one MAE training step (forward,
backward, AdamW) of the ViT-Tiny config against a plain timm ViT-Tiny step
on all tokens, interleaved; bf16 autocast as an extra row."""
from __future__ import annotations

import argparse

import torch

from perception.benchmarks import Benchmark, format_table, interleave
from perception.registry import BENCHMARKS, MODELS

# the model of configs/pretrain/mae_vit-tiny_p16_224.py (a test keeps them
# equal)
MAE_VIT_TINY = dict(
    type='MAE',
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=224,
                  patch_size=16, in_chans=3),
    decoder=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    mask_ratio=0.75, norm_pix_loss=True)


def bf16_supported() -> bool:
    """Whether oneDNN has fast bf16 kernels on this CPU."""
    check = getattr(torch.backends.mkldnn, 'is_bf16_supported', None)
    if check is not None:
        return bool(check())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _step(model, loss_fn, optimizer, amp: bool):
    def run():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model)
        loss.backward()
        optimizer.step()
    return run


def count_flops(fn) -> int:
    """Forward + backward FLOPs of one call (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


@BENCHMARKS.register_module(name='pretrain')
class PretrainBenchmark(Benchmark):
    name = 'pretrain'
    help = ('MAE ViT-Tiny training step vs timm ViT-Tiny on all tokens '
            '(fp32; bf16 autocast row)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--batch', type=int, default=32)
        parser.add_argument('--size', type=int, default=224)
        parser.add_argument('--threads', type=int, default=2)
        parser.add_argument('--repeats', type=int, default=5)
        parser.add_argument('--warmup', type=int, default=1)

    def run(self, args: argparse.Namespace) -> int:
        import timm
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        images = torch.randn(args.batch, 3, args.size, args.size)
        labels = torch.randint(0, 1000, (args.batch, ))
        cfg = dict(MAE_VIT_TINY)
        cfg['backbone'] = dict(cfg['backbone'], img_size=args.size)
        mae = MODELS.build(cfg).train()
        vit = timm.create_model('vit_tiny_patch16_224', img_size=args.size,
                                num_classes=1000).train()

        def mae_loss(m):
            return m(images, mode='loss')['loss']

        def vit_loss(m):
            return torch.nn.functional.cross_entropy(m(images), labels)

        opt_mae = torch.optim.AdamW(
            [p for p in mae.parameters() if p.requires_grad], lr=1e-4)
        opt_vit = torch.optim.AdamW(vit.parameters(), lr=1e-4)
        contestants = {
            'timm ViT-Tiny, all tokens, fp32':
                _step(vit, vit_loss, opt_vit, False),
            'MAE ViT-Tiny (75% masked), fp32':
                _step(mae, mae_loss, opt_mae, False)}
        has_bf16 = bf16_supported()
        if has_bf16:
            contestants['MAE ViT-Tiny (75% masked), bf16 autocast'] = _step(
                mae, mae_loss, opt_mae, True)
        flops_full = count_flops(lambda: vit_loss(vit).backward())
        flops_mae = count_flops(lambda: mae_loss(mae).backward())
        opt_mae.zero_grad()
        opt_vit.zero_grad()
        timings = interleave(contestants, repeats=args.repeats,
                             warmup=args.warmup)
        names = list(timings)
        full = timings[names[0]].median
        mae_fp32 = timings[names[1]].median
        rows = []
        for name in names:
            t = timings[name]
            flop_ratio = '1' if name == names[0] else (
                f'{flops_mae / flops_full:.3f}' if 'fp32' in name else '')
            rows.append([name, t.median, t.best, f'{t.median / full:.3f}',
                         flop_ratio])
        if not has_bf16:
            rows.append(['MAE ViT-Tiny (75% masked), bf16 autocast', 'n/a',
                         'n/a', 'n/a (no oneDNN bf16 on this CPU)', ''])
        print(f'batch {args.batch}, {args.size}x{args.size}, '
              f'{args.threads} threads, {args.repeats} interleaved repeats '
              f'after {args.warmup} warm-up; step = forward + backward + '
              'AdamW')
        print(format_table(['step', 'median s', 'best s', 'x full-token fp32',
                            'FLOP ratio'], rows))
        if has_bf16:
            bf16 = timings[names[2]].median
            print(f'bf16 / fp32 MAE step: {bf16 / mae_fp32:.3f} '
                  '(target <= 0.8)')
        print(f'MAE fp32 / full-token fp32: {mae_fp32 / full:.3f} '
              '(target <= 0.5)')
        return 0
