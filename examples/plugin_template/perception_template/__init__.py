"""A third-party perception plugin: one model, one source, one subcommand."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from mmengine.model import BaseModel

from perception.cli.base import Command
from perception.models import build_data_preprocessor
from perception.registry import COMMANDS, MODELS, SOURCES
from perception.sources import Frame, FrameSource, SourceOpener

__version__ = '0.1.0'


@MODELS.register_module()
class TemplateTinyNet(BaseModel):
    """Global average pool + linear layer: the smallest classifier."""

    def __init__(self, num_classes: int = 2, in_chans: int = 3,
                 data_preprocessor: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor))
        self.head = torch.nn.Linear(in_chans, num_classes)

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        logits = self.head(inputs.float().mean(dim=(2, 3)))
        if mode == 'loss':
            labels = torch.cat([s.gt_label for s in data_samples])
            return {'loss': torch.nn.functional.cross_entropy(logits, labels)}
        return logits


class CounterSource(FrameSource):
    """``counter://N``: N grey 8x8 RGB frames whose value is their index."""

    def __init__(self, uri: str, count: int) -> None:
        super().__init__(uri)
        self.count = count

    def _iter_frames(self) -> Iterator[Frame]:
        for index in range(self.count):
            image = np.full((8, 8, 3), index % 256, np.uint8)
            yield Frame(image, index * 100_000_000, index, 'counter',
                        {'clock': 'index'})
        self.emit('eos', f'{self.count} frames')


@SOURCES.register_module()
class CounterOpener(SourceOpener):
    priority = 50

    def can_open(self, uri: str) -> bool:
        return uri.startswith('counter://')

    def open(self, uri: str, **options) -> FrameSource:
        count = uri[len('counter://'):]
        if not count.isdigit():
            raise ValueError(f"{uri}: expected counter://N with N a number")
        return CounterSource(uri, int(count))


@COMMANDS.register_module(name='template-hello')
class HelloCommand(Command):
    name = 'template-hello'
    help = 'say hello from the template plugin'

    def add_arguments(self, parser):
        parser.add_argument('who', help='whom to greet')

    def run(self, args) -> int:
        print(f'hello {args.who} from perception_template')
        return 0
