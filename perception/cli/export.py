"""``perception export``: a trained detector, segmentor or classifier -> a
verified deploy bundle (model.onnx, manifest.json, parity.json,
oplint.json, reference/), through :func:`perception.apis.export`. Imports
no torch at module level."""
from __future__ import annotations

import argparse

from perception.cli.base import Command
from perception.registry import COMMANDS


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size {text!r}: give HEIGHTxWIDTH, e.g. 384x640") from None
    return height, width


def _outputs(manifest) -> str:
    """What the bundle outputs, in the summary line's words."""
    if manifest.task == 'detection':
        return f"nms {manifest.postprocess['nms']}"
    return (f"{manifest.task}, outputs {', '.join(manifest.outputs['names'])}")


@COMMANDS.register_module(name='export')
class ExportCommand(Command):
    name = 'export'
    help = ('export a detector, segmentor or classifier to a deploy bundle '
            '(ONNX), verified against '
            'PyTorch (parity) and linted for TensorRT')

    def add_arguments(self, parser):
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('checkpoint', help='checkpoint file (.pth), or a '
                            'work dir (its latest checkpoint)')
        parser.add_argument('--format', choices=['onnx', 'tensorrt'],
                            default='onnx', help='onnx (tensorrt: build an '
                            'engine from the bundle on the device)')
        parser.add_argument('--out', help='bundle folder (default: '
                            'work_dirs/<config name>/deploy)')
        parser.add_argument('--opset', type=int, default=18,
                            help='ONNX opset (default 18: the dynamo '
                            "exporter's lowest, within TensorRT 10.3's 9..20)")
        parser.add_argument('--target', choices=['trt10.3', 'trt11'],
                            default='trt10.3', help='TensorRT target of the '
                            'op lint (default trt10.3, JetPack 6)')
        parser.add_argument('--nms', choices=['none', 'onnx'], default='none',
                            help='none: boxes + scores, NMS outside (default);'
                            ' onnx: ONNX NonMaxSuppression in the graph')
        parser.add_argument('--dynamic', choices=['none', 'batch', 'batch,hw'],
                            default='batch', help='dynamic axes (default '
                            'batch; batch,hw where the backbone allows)')
        parser.add_argument('--size', type=_size, metavar='HxW',
                            help='graph input size (default: the '
                            "pretrained_cfg's input size)")
        parser.add_argument('--score-thr', type=float,
                            help="post-processing score threshold (default: "
                            "the head's test_cfg)")
        parser.add_argument('--nms-iou', type=float, help='NMS IoU threshold')
        parser.add_argument('--max-per-img', type=int,
                            help='detections per image at most')
        parser.add_argument('--atol-rel', type=float, default=1e-3,
                            help="parity: max abs error allowed as a fraction "
                            "of each output's scale (default 1e-3)")
        parser.add_argument('--match-iou', type=float, default=0.99,
                            help='parity: IoU a detection must match at '
                            '(default 0.99)')
        parser.add_argument('--match-score', type=float, default=0.3,
                            help='parity: detections above this score must '
                            'match (default 0.3)')
        parser.add_argument('--parity-images', metavar='DIR',
                            help='run the parity check on these images '
                            '(through the pretrained_cfg) instead of noise')
        parser.add_argument('--argmax', action='store_true',
                            help='segmentors: output the per-pixel class map '
                            '(ArgMax in the graph) instead of logits')
        parser.add_argument('--labels-dtype', choices=['int64', 'uint8'],
                            default='int64', help='segmentors with --argmax: '
                            'type of the class map (default int64)')
        parser.add_argument('--cls-output', choices=['scores', 'logits'],
                            default='scores', help='classifiers: softmax '
                            'scores (default) or logits')
        parser.add_argument('--min-pixel-agreement', type=float,
                            default=0.999, help='segmentors, parity: share of '
                            'pixels whose arg-max class must agree (default '
                            '0.999)')
        parser.add_argument('--no-simplify', action='store_true',
                            help='skip onnxslim')
        parser.add_argument('--allow-oplint', action='store_true',
                            help='keep the bundle when the TensorRT op lint '
                            'finds problems (they stay in oplint.json)')
        parser.add_argument('--legacy-exporter', action='store_true',
                            help='use the TorchScript exporter (dynamo=False)')
        parser.add_argument('--cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE', help='override config entries')
        parser.add_argument('--trust-checkpoint', action='store_true',
                            help='allow checkpoints that need arbitrary '
                            'unpickling (only for files you trust)')
        from perception.cli.deploy import add_precision_arguments, add_tensorrt_arguments
        add_precision_arguments(parser)
        add_tensorrt_arguments(parser)

    def run(self, args):
        from perception import apis
        from perception.cli.deploy import build_engine_after_export, precision_options
        from perception.progress import summary
        result = apis.export(
            args.config, args.checkpoint, out=args.out, opset=args.opset,
            target=args.target, nms=args.nms, dynamic=args.dynamic,
            size=args.size, score_thr=args.score_thr, nms_iou=args.nms_iou,
            max_per_img=args.max_per_img, atol_rel=args.atol_rel,
            match_iou=args.match_iou, match_score=args.match_score,
            simplify=not args.no_simplify,
            oplint_gate=not args.allow_oplint,
            legacy=args.legacy_exporter, parity_images=args.parity_images,
            argmax=args.argmax, labels_dtype=args.labels_dtype,
            cls_output=args.cls_output,
            min_pixel_agreement=args.min_pixel_agreement,
            cfg_options=args.cfg_options,
            trust_checkpoint=args.trust_checkpoint, **precision_options(args))
        manifest = result.manifest
        print(result.checker['summary'])
        print(result.parity['summary'])
        print(result.oplint['summary'])
        if result.precision:
            print(result.precision['gate']['summary'])
        exporter = manifest.exporter
        fallback = (f" (dynamo failed: {exporter['fallback_reason']})"
                    if exporter.get('fallback_reason') else '')
        summary(f"exported {manifest.source.get('config')} to "
                f"'{result.bundle_dir}': opset {manifest.opset}, "
                f"{exporter['path']} exporter{fallback}, dynamic "
                f"{manifest.dynamic}, {_outputs(manifest)}, "
                f"input {manifest.input['shape']}, sha256 "
                f"{manifest.sha256[:12]}")
        return build_engine_after_export(args, result.bundle_dir)
