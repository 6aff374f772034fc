"""Commands about data: ``perception synth-images`` (generated labelled
images) and ``perception browse`` (pictures of samples as the pipeline
delivers them)."""
from __future__ import annotations

import argparse

from perception.cli.base import Command
from perception.registry import COMMANDS


@COMMANDS.register_module(name='synth-images')
class SynthImagesCommand(Command):
    name = 'synth-images'
    help = 'write generated labelled images (OUT/<class>/*.png)'

    def add_arguments(self, parser):
        parser.add_argument('out', help='output folder')
        parser.add_argument('--n-per-class', type=int, default=32)
        parser.add_argument('--size', type=int, default=64)
        parser.add_argument('--seed', type=int, default=0)
        parser.add_argument('--quiet', action='store_true',
                            help='no progress display (the summary line '
                            'stays)')

    def run(self, args):
        import time

        from perception.data.synth import SHAPES, write_shape_images
        from perception.progress import summary
        start = time.perf_counter()
        paths = write_shape_images(args.out, args.n_per_class, args.size,
                                   seed=args.seed,
                                   quiet=True if args.quiet else None)
        summary(f'synth-images: wrote {len(paths)} images ({len(SHAPES)} '
                f'classes x {args.n_per_class}, {args.size} px) to '
                f'{args.out} in {time.perf_counter() - start:.1f} s')
        return 0


@COMMANDS.register_module(name='browse')
class BrowseCommand(Command):
    name = 'browse'
    help = ('write pictures of samples as the pipeline delivers them '
            '(boxes, labels, shaded ignore regions, windowed CT)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('--split', default='train',
                            help='train, val or test (default train)')
        parser.add_argument('--n', type=int, default=16,
                            help='number of samples (default 16)')
        parser.add_argument('--out', help='output folder (default '
                            'work_dirs/browse/<config name>)')
        parser.add_argument('--cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE',
                            help='override config entries, e.g. '
                            'train_dataloader.dataset.data_root=DIR')
        parser.add_argument('--seed', type=int, default=0,
                            help='random seed of the augmentation')

    def run(self, args: argparse.Namespace) -> int:
        from perception.visualization import browse
        written = browse(args.config, args.split, args.n, args.out,
                         args.cfg_options, args.seed)
        import os
        folder = os.path.dirname(written[0]) if written else args.out
        print(f'wrote {len(written)} pictures of {args.split} samples to '
              f'{folder}')
        return 0
