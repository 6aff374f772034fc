"""``perception infer MODEL SOURCE``: a detector (checkpoint, bundle folder
or .onnx) on a video, image folder, stream, bag, rig or DICOM series,
through :func:`perception.apis.infer`."""
from __future__ import annotations

import argparse

from perception.cli.base import Command
from perception.registry import COMMANDS


def _source_option(text: str) -> tuple[str, object]:
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'{text!r}: write KEY=VALUE, e.g. '
                                         'timeout_s=5')
    key, value = text.split('=', 1)
    import json
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


@COMMANDS.register_module(name='infer')
class InferCommand(Command):
    name = 'infer'
    help = ('detect objects in a video, image folder, stream, bag, rig or '
            'DICOM series with a checkpoint or an exported model')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('model', help='checkpoint (.pth) or work dir '
                            '(PyTorch), bundle folder or .onnx file (ONNX '
                            'Runtime)')
        parser.add_argument('source', help='anything open_source accepts: '
                            'video file, image folder or glob, http:// '
                            'MJPEG or rtsp:// URL, ROS bag, rig YAML, DICOM '
                            'series folder')
        parser.add_argument('--out', default='work_dirs/infer',
                            help='output folder (default work_dirs/infer)')
        parser.add_argument('--backend', help="a BACKENDS name: "
                            "'onnxruntime' (default for bundles and .onnx "
                            "files) or 'torch' (default for checkpoints)")
        parser.add_argument('--score-thr', type=float,
                            help="lowest score kept (default: the model's)")
        parser.add_argument('--batch', type=int, default=1,
                            help='frames per model call (default 1)')
        parser.add_argument('--threads', type=int, default=0,
                            help='intra-op threads (0: the backend default)')
        parser.add_argument('--max-frames', type=int,
                            help='stop after this many frames')
        parser.add_argument('--no-pictures', action='store_true',
                            help='write no pictures of frames')
        parser.add_argument('--no-video', action='store_true',
                            help='write no annotated MP4')
        parser.add_argument('--source-option', type=_source_option,
                            action='append', default=[], metavar='KEY=VALUE',
                            help='option of the source opener, e.g. '
                            'timeout_s=5 or buffering=fifo (repeatable)')
        parser.add_argument('--trust-checkpoint', action='store_true',
                            help='allow checkpoints that need arbitrary '
                            'unpickling (only for files you trust)')
        parser.add_argument('--quiet', action='store_true',
                            help='no progress output')

    def run(self, args: argparse.Namespace) -> int:
        from perception import apis
        from perception.progress import set_quiet, summary
        if args.quiet:
            set_quiet(True)
        options = {}
        if args.trust_checkpoint:
            options['trust_checkpoint'] = True
        result = apis.infer(
            args.model, args.source, out=args.out, backend=args.backend,
            score_thr=args.score_thr, batch=args.batch, threads=args.threads,
            max_frames=args.max_frames, pictures=not args.no_pictures,
            videos=not args.no_video,
            source_options=dict(args.source_option), **options)
        videos = ', '.join(f'{k} ({v} frames)' for k, v in
                           result['videos'].items())
        post = ''.join(
            f'; {name}: ' + ', '.join(f'{k} {v}' for k, v in value.items()
                                      if isinstance(v, (int, float)))
            for name, value in result['postprocessors'].items())
        state = ' (interrupted)' if result['interrupted'] else ''
        summary(f"infer{state}: {result['frames']} frames, "
                f"{result['detections']} detections, {result['fps']:.1f} "
                f"frames/s; wrote {result['files'][0]}"
                + (f', {videos}' if videos else '')
                + (f", {result['pictures']} pictures" if result['pictures']
                   else '') + post)
        return 0
