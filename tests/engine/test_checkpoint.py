"""Safe checkpoint I/O: weights_only loading, refusal naming the globals,
trust only when asked, runner state stored as tensors and plain
containers, pretrained_cfg in the meta."""
from __future__ import annotations

import io
import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import perception.engine
from perception.data import PretrainedCfg
from perception.engine import (
    CheckpointStateHook,
    PretrainedCfgHook,
    UnsafeCheckpointError,
    load_checkpoint_file,
    trust_checkpoints,
)
from perception.engine.checkpoint import decode_state, encode_state, unsafe_entries

perception.engine.install()  # explicitly, as every run the engine builds does


class Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'x': Evil(str(marker))},
               path)
    return path, marker


def test_refuses_and_names_the_globals(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message and 'io.open' in message
    assert '--trust-checkpoint' in message
    assert not marker.exists()


def test_buffers_are_refused_too(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError, match='io.open'):
        load_checkpoint_file(io.BytesIO(path.read_bytes()))
    assert not marker.exists()


def test_trust_is_scoped_and_explicit(evil):
    path, marker = evil
    with trust_checkpoints():
        assert load_checkpoint_file(path)['state_dict']['w'].sum() == 2
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeCheckpointError):  # trust ended with the block
        load_checkpoint_file(path)
    assert not marker.exists()


def test_importing_patches_nothing_until_installed():
    import subprocess
    import sys
    code = ('import perception.models, perception.engine, perception.data\n'
            'from mmengine.runner import checkpoint as c\n'
            'assert c.load_url.__module__ != "perception.engine.checkpoint", "patched"\n'
            'perception.engine.install()\n'
            'assert c.load_url.__module__ == "perception.engine.checkpoint"\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_mmengine_loading_goes_through_the_safe_loader(evil):
    path, marker = evil
    assert CheckpointLoader._get_checkpoint_loader(str(path)).__module__ == \
        'perception.engine.checkpoint'
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(str(path))
    from mmengine.runner import checkpoint as mm_checkpoint
    with pytest.raises(UnsafeCheckpointError):  # what s3:// / pavi:// do
        mm_checkpoint.torch.load(io.BytesIO(path.read_bytes()))
    assert mm_checkpoint.load_url.__module__ == 'perception.engine.checkpoint'
    assert not marker.exists()


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(tmp_path / 'nope.pth')


def test_runner_state_round_trips_through_weights_only(tmp_path):
    hub = MessageHub('engine-test-state')
    for value in (1.5, 0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_info('palette', np.arange(6, dtype=np.uint8).reshape(2, 3))
    hub.update_info('count', np.int64(7))
    hub.update_info('names', frozenset({'a', 'b'}))
    checkpoint = {
        'meta': {'seed': np.int64(3), 'lr': np.float64(0.5)},
        'state_dict': OrderedDict(w=torch.zeros(2)),
        'message_hub': hub.state_dict(),
    }
    CheckpointStateHook().before_save_checkpoint(None, checkpoint)
    assert unsafe_entries(checkpoint) == []
    torch.save(checkpoint, tmp_path / 'c.pth')
    plain = torch.load(tmp_path / 'c.pth', weights_only=True)
    assert plain['meta'] == {'seed': 3, 'lr': 0.5}

    loaded = load_checkpoint_file(tmp_path / 'c.pth')
    CheckpointStateHook().after_load_checkpoint(None, loaded)  # idempotent
    restored = MessageHub('engine-test-restored')
    restored.load_state_dict(loaded['message_hub'])
    buffer = restored.get_scalar('train/loss')
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.data[0].tolist() == [1.5, 0.5, 0.25]
    assert buffer.mean() == pytest.approx(0.75)
    palette = restored.get_info('palette')
    assert palette.dtype == np.uint8 and palette.tolist() == [[0, 1, 2],
                                                             [3, 4, 5]]
    assert restored.get_info('count') == 7
    assert restored.get_info('names') == frozenset({'a', 'b'})


def test_unsafe_entries_names_paths():
    assert unsafe_entries({'a': [1, {'b': object()}]}) == [
        "checkpoint['a'][1]['b'] (builtins.object)"]
    assert decode_state(encode_state({'x': (np.float32(1), )})) == {
        'x': (1.0, )}


class _Preprocessor(torch.nn.Module):
    def preprocessing_cfg(self):
        return {'mean': [0.5], 'std': [0.25], 'windows': [[-600, 1500]]}


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.data_preprocessor = _Preprocessor()

    def architecture_cfg(self):
        return {'input_size': [1, 224, 224], 'architecture': 'vit_tiny'}


def test_pretrained_cfg_lands_in_meta():
    runner = type('R', (), {'model': _Model(), 'cfg': {
        'val_dataloader': {'dataset': {'pipeline': [
            {'type': 'Resize', 'scale': (224, 224),
             'interpolation': 'bicubic'}]}}}})()
    checkpoint = {'meta': {'cfg': 'model = dict()'}}
    PretrainedCfgHook().before_save_checkpoint(runner, checkpoint)
    stored = checkpoint['meta']['pretrained_cfg']
    assert stored == PretrainedCfg(
        architecture='vit_tiny', input_size=(1, 224, 224), mean=[0.5],
        std=[0.25], windows=[(-600, 1500)],
        interpolation='bicubic').to_dict()
    assert stored['format_version'] == 1
    assert checkpoint['meta']['cfg'] == 'model = dict()'
    json.dumps(checkpoint['meta'])
    assert PretrainedCfg.from_model(torch.nn.Linear(1, 1)) == PretrainedCfg()

    class Bad(_Model):
        def architecture_cfg(self):
            return {'extra': {'size': object()}}
    with pytest.raises(TypeError, match='JSON'):
        PretrainedCfgHook().before_save_checkpoint(
            type('R', (), {'model': Bad()})(), {'meta': {}})


def test_urls_are_downloaded_then_loaded_safely(tmp_path, evil, monkeypatch):
    import functools
    import http.server
    import threading
    path, marker = evil
    torch.save({'state_dict': {'w': torch.ones(3)}}, tmp_path / 'good.pth')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    base = f'http://127.0.0.1:{server.server_address[1]}'
    try:
        good = _load_checkpoint(f'{base}/good.pth')
        assert good['state_dict']['w'].sum() == 3
        with pytest.raises(UnsafeCheckpointError, match='io.open'):
            _load_checkpoint(f'{base}/evil.pth')
    finally:
        server.shutdown()
        server.server_close()
    assert not marker.exists()
