"""``perception benchmark pretrain``: one MAE training step (forward,
backward, AdamW) of the ViT-Tiny config against a plain timm ViT-Tiny step
on all tokens, interleaved; bf16 autocast as an extra row. With
``--reference-dir DIR`` (a checkout of facebookresearch/mae) the reference
MAE's step, with its own optimizer set-up (``torch.optim.AdamW``, betas
(0.9, 0.95), defaults otherwise), joins the same interleaved run in fp32
and bf16, and the ratios at equal precision and against the default
precision (``amp='auto'``) are printed."""
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
# the optimizer of that config, less the learning rate (a test keeps them
# equal): fused AdamW, one kernel over all parameters
MAE_OPTIMIZER = dict(type='AdamW', betas=(0.9, 0.95), weight_decay=0.05,
                     fused=True)


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
        parser.add_argument(
            '--reference-dir', metavar='DIR',
            help='a checkout of https://github.com/facebookresearch/mae: '
            'adds its MAE step (fp32, and bf16 where supported) to the run')

    def run(self, args: argparse.Namespace) -> int:
        import timm
        reference = None
        if args.reference_dir:
            from perception_mim.reference import reference_mae_vit_tiny
            reference = reference_mae_vit_tiny(args.reference_dir,
                                               args.size).train()
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

        def ref_loss(m):
            return m(images, mask_ratio=MAE_VIT_TINY['mask_ratio'])[0]

        opt_kwargs = {k: v for k, v in MAE_OPTIMIZER.items() if k != 'type'}
        opt_mae = torch.optim.AdamW(
            [p for p in mae.parameters() if p.requires_grad], lr=1e-4,
            **opt_kwargs)
        opt_vit = torch.optim.AdamW(vit.parameters(), lr=1e-4)
        has_bf16 = bf16_supported()
        names = dict(full='timm ViT-Tiny, all tokens, fp32',
                     fp32='MAE ViT-Tiny (75% masked), fp32',
                     bf16='MAE ViT-Tiny (75% masked), bf16 autocast',
                     ref32='reference MAE (facebookresearch), fp32',
                     ref16='reference MAE (facebookresearch), bf16 autocast')
        contestants = {names['full']: _step(vit, vit_loss, opt_vit, False),
                       names['fp32']: _step(mae, mae_loss, opt_mae, False)}
        if has_bf16:
            contestants[names['bf16']] = _step(mae, mae_loss, opt_mae, True)
        if reference is not None:
            # as main_pretrain.py builds it (weight-decay groups aside):
            # torch.optim.AdamW, betas (0.9, 0.95), the defaults otherwise
            opt_ref = torch.optim.AdamW(
                [p for p in reference.parameters() if p.requires_grad],
                lr=1e-4, betas=(0.9, 0.95))
            contestants[names['ref32']] = _step(reference, ref_loss, opt_ref,
                                                False)
            if has_bf16:
                contestants[names['ref16']] = _step(reference, ref_loss,
                                                    opt_ref, True)
        flops_full = count_flops(lambda: vit_loss(vit).backward())
        flops_mae = count_flops(lambda: mae_loss(mae).backward())
        opt_mae.zero_grad()
        opt_vit.zero_grad()
        timings = interleave(contestants, repeats=args.repeats,
                             warmup=args.warmup, desc='pretrain')
        medians = {key: timings[name].median for key, name in names.items()
                   if name in timings}
        full = medians['full']
        rows = []
        for name, t in timings.items():
            flop_ratio = '1' if name == names['full'] else (
                f'{flops_mae / flops_full:.3f}' if name == names['fp32']
                else '')
            rows.append([name, t.median, t.best, f'{t.median / full:.3f}',
                         flop_ratio])
        if not has_bf16:
            rows.append([names['bf16'], 'n/a', 'n/a',
                         'n/a (no oneDNN bf16 on this CPU)', ''])
        print(f'batch {args.batch}, {args.size}x{args.size}, '
              f'{args.threads} threads, {args.repeats} interleaved repeats '
              f'after {args.warmup} warm-up; step = forward + backward + '
              'AdamW (ours fused, as the config; the reference as '
              'main_pretrain.py)')
        print(format_table(['step', 'median s', 'best s', 'x full-token fp32',
                            'FLOP ratio'], rows))
        for line in speed_ratios(medians):
            print(line)
        return 0


def speed_ratios(medians: dict[str, float]) -> list[str]:
    """The summary lines: bf16 / fp32, masked / full-token, and with the
    reference (keys ``ref32``/``ref16``) how many times faster ours is at
    equal precision and with the default precision (``amp='auto'``: bf16
    where the CPU has it)."""
    lines = []
    if 'bf16' in medians:
        lines.append(f"bf16 / fp32 MAE step: "
                     f"{medians['bf16'] / medians['fp32']:.3f} "
                     '(target <= 0.8)')
    lines.append(f"MAE fp32 / full-token fp32: "
                 f"{medians['fp32'] / medians['full']:.3f} (target <= 0.5)")
    if 'ref32' in medians:
        lines.append(f"speed-up over the reference, fp32 vs fp32: "
                     f"{medians['ref32'] / medians['fp32']:.3f}x "
                     '(target >= 1.3x)')
        if 'ref16' in medians:
            lines.append(f"speed-up over the reference, bf16 vs bf16: "
                         f"{medians['ref16'] / medians['bf16']:.3f}x "
                         '(target >= 1.3x)')
        default = medians.get('bf16', medians['fp32'])
        lines.append(f"speed-up over the reference in fp32, ours with the "
                     f"default precision ({'bf16' if 'bf16' in medians else 'fp32'}): "
                     f"{medians['ref32'] / default:.3f}x (target >= 2.5x)")
    return lines
