"""``perception train`` and ``perception test``: the mmengine Runner through
:mod:`perception.apis`."""
from __future__ import annotations

import argparse

from perception.cli.base import Command
from perception.registry import COMMANDS


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every runner command takes."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch'],
                        default='none', help='pytorch under torchrun')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints that need arbitrary '
                        'unpickling (only for files you trust)')


@COMMANDS.register_module(name='train')
class TrainCommand(Command):
    name = 'train'
    help = 'train a model from a config with the mmengine Runner'

    def add_arguments(self, parser):
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('--resume', nargs='?', const='auto',
                            metavar='CKPT', help='resume from CKPT, or the '
                            'latest checkpoint in the work dir')
        parser.add_argument('--amp', nargs='?', const='bf16', default=None,
                            choices=['auto', 'bf16', 'fp16', 'off'],
                            help="mixed precision: 'auto' (the default: "
                            'bf16 where the CPU/GPU has it natively, else '
                            "fp32), 'bf16' (a bare --amp), 'fp16', 'off'")
        parser.add_argument('--compile', action='store_true', default=None,
                            help='compile the training step (torch.compile; '
                            'falls back to eager, saying why, if it fails)')
        add_runner_arguments(parser)

    def run(self, args):
        from perception import apis
        apis.train(args.config, work_dir=args.work_dir, resume=args.resume,
                   cfg_options=args.cfg_options, launcher=args.launcher,
                   amp=args.amp, compile=args.compile,
                   trust_checkpoint=args.trust_checkpoint)
        return 0


@COMMANDS.register_module(name='test')
class TestCommand(Command):
    name = 'test'
    help = 'evaluate a checkpoint on the test split of a config'

    def add_arguments(self, parser):
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('checkpoint', help='checkpoint file (.pth), or '
                            'a work dir (its latest checkpoint)')
        parser.add_argument('--out', help='write predictions to this JSON '
                            'file: COCO results where the evaluator has a '
                            'CocoMetric (detection), else every sample')
        parser.add_argument('--show-dir', help='write pictures of '
                            'predictions to this folder (a relative path '
                            'is inside the work dir)')
        parser.add_argument('--backend', choices=['torch', 'onnxruntime'],
                            default='torch', help='torch (CHECKPOINT is a '
                            'checkpoint) or onnxruntime (CHECKPOINT is a '
                            'deploy bundle or .onnx: the metric of what '
                            'ships)')
        add_runner_arguments(parser)

    def run(self, args):
        from perception import apis
        apis.test(args.config, args.checkpoint, work_dir=args.work_dir,
                  cfg_options=args.cfg_options, launcher=args.launcher,
                  out=args.out, show_dir=args.show_dir,
                  trust_checkpoint=args.trust_checkpoint,
                  backend=args.backend)
        return 0
