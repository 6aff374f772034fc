"""The mim plugin's subcommands: ``synth-mim`` (generated unlabeled images)
and ``export-backbone`` (a pretrained encoder as timm weights). Imports
nothing heavy: the work is imported inside ``run``."""
from __future__ import annotations

import argparse
import os

from perception.cli.base import Command
from perception.registry import COMMANDS


@COMMANDS.register_module(name='synth-mim')
class SynthMimCommand(Command):
    name = 'synth-mim'
    help = ('write generated unlabeled images for masked-image pretraining '
            '(OUT/train, OUT/val)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('out', help='output folder')
        parser.add_argument('--n-train', type=int, default=2000)
        parser.add_argument('--n-val', type=int, default=64)
        parser.add_argument('--size', type=int, default=224)
        parser.add_argument('--seed', type=int, default=0)
        parser.add_argument('--quiet', action='store_true',
                            help='no progress display (the summary line '
                            'stays)')

    def run(self, args: argparse.Namespace) -> int:
        import time

        from perception.progress import summary
        from perception_mim.synth import write_pretrain_images
        start = time.perf_counter()
        quiet = True if args.quiet else None
        train = write_pretrain_images(os.path.join(args.out, 'train'),
                                      args.n_train, args.size, args.seed,
                                      quiet, 'synth-mim: train')
        # a different seed: held-out images never seen in training
        val = write_pretrain_images(os.path.join(args.out, 'val'),
                                    args.n_val, args.size, args.seed + 10_007,
                                    quiet, 'synth-mim: val')
        summary(f'synth-mim: wrote {len(train)} training and {len(val)} '
                f'held-out {args.size}x{args.size} images under {args.out} '
                f'in {time.perf_counter() - start:.1f} s')
        return 0


@COMMANDS.register_module(name='export-backbone')
class ExportBackboneCommand(Command):
    name = 'export-backbone'
    help = 'write a pretrained encoder as timm safetensors + config.json'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('checkpoint', help='pretraining checkpoint '
                            '(.pth), or a work dir (its last checkpoint)')
        parser.add_argument('out', help='output folder')
        parser.add_argument('--prefix', default='backbone.',
                            help='key prefix of the encoder in the checkpoint')
        parser.add_argument('--trust-checkpoint', action='store_true',
                            help='allow full unpickling (trusted files only)')

    def run(self, args: argparse.Namespace) -> int:
        from perception.fileio import resolve_checkpoint
        from perception_mim.export import export_backbone
        config = export_backbone(resolve_checkpoint(args.checkpoint),
                                 args.out, args.prefix, args.trust_checkpoint)
        print(f"wrote {os.path.join(args.out, 'model.safetensors')} and "
              f"config.json ({config['architecture']}); load with "
              f"timm.create_model('local-dir:{args.out}')")
        return 0
