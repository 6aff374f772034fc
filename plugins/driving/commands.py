"""Subcommands of the driving plugin, registered in ``COMMANDS``.

Plugin discovery imports this module alone (``COMMAND_MODULES``) to list
the commands, so it imports nothing heavy: each ``run`` imports what it
needs.
"""
from __future__ import annotations

import argparse
import sys
import time

from perception.cli.base import Command
from perception.registry import COMMANDS
from perception_driving.synth.options import FORMATS, LIGHTINGS, WEATHERS


@COMMANDS.register_module(name='synth-drive')
class SynthDriveCommand(Command):
    """``perception synth-drive OUT``: a synthetic drive in every format
    (:func:`perception_driving.synth.generate_drive`)."""

    name = 'synth-drive'
    help = 'write a synthetic drive in every supported format'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('out', help='output folder (created)')
        parser.add_argument('--seed', type=int, default=0,
                            help='the same seed gives the same drive')
        parser.add_argument('--frames', type=int, default=20,
                            help='frames per camera (default 20)')
        parser.add_argument('--size', type=int, nargs=2, default=(640, 360),
                            metavar=('WIDTH', 'HEIGHT'),
                            help='image size (default 640 360)')
        parser.add_argument('--cameras', type=int, default=3,
                            choices=(1, 2, 3),
                            help='front, + front_left, + front_right '
                                 '(default 3; a rig needs 2 or 3)')
        parser.add_argument('--lighting', default='day', choices=LIGHTINGS)
        parser.add_argument('--weather', default='clear', choices=WEATHERS)
        parser.add_argument('--fps', type=float, default=10.0,
                            help='frame rate (default 10)')
        parser.add_argument('--formats', nargs='+', default=list(FORMATS),
                            choices=FORMATS, metavar='FORMAT',
                            help=f"subset of {', '.join(FORMATS)} "
                                 '(default all; image folders are always '
                                 'written)')
        parser.add_argument('--overwrite', action='store_true',
                            help='write into a folder that is not empty')
        parser.add_argument('--quiet', action='store_true',
                            help='no progress display (the summary line '
                            'stays)')

    def run(self, args: argparse.Namespace) -> int:
        from perception.progress import summary as summary_line
        from perception_driving.synth.drive import generate_drive
        start = time.perf_counter()
        try:
            summary = generate_drive(args.out, args.seed, args.frames,
                                     args.size, args.cameras, args.lighting,
                                     args.weather, args.fps, args.formats,
                                     args.overwrite,
                                     quiet=True if args.quiet else None)
        except (FileExistsError, ValueError) as exc:
            print(f'perception synth-drive: error: {exc}', file=sys.stderr)
            return 2
        for cls, n in summary['boxes_per_class'].items():
            print(f'  {cls:14s} {n:5d} boxes')
        print(f"  ignore regions {summary['ignore_regions']:5d}")
        for fmt, path in summary['paths'].items():
            print(f'  {fmt:9s} {path}')
        for note in summary['notes']:
            print(f'  note: {note}')
        boxes = sum(summary['boxes_per_class'].values())
        summary_line(
            f"synth-drive: wrote {summary['frames']} frames x "
            f"{len(summary['cameras'])} camera(s) "
            f"({', '.join(summary['cameras'])}), {boxes} boxes, "
            f"{args.lighting}, {args.weather}, seed {args.seed}, in "
            f"{len(summary['paths'])} formats to {args.out} in "
            f'{time.perf_counter() - start:.1f} s')
        return 0
