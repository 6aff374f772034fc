"""PretrainedCfg: one record built from model + preprocessor + val pipeline;
``preprocess`` equals the val pipeline and data preprocessor exactly, for a
camera frame, a CT slice and a CT slab; round trips; timm's view."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from perception.data import PretrainedCfg
from perception.data.transforms import PackInputs, Resize
from perception.models import PerceptionDataPreprocessor


class _Model(torch.nn.Module):
    def __init__(self, **preprocessor) -> None:
        super().__init__()
        self.data_preprocessor = PerceptionDataPreprocessor(**preprocessor)

    def architecture_cfg(self) -> dict:
        return dict(architecture='vit_tiny_patch16_224',
                    model_args=dict(embed_dim=192))


def _val_pipeline_tensor(model, image: np.ndarray, scale) -> torch.Tensor:
    """What training's val path gives: transforms, then the preprocessor."""
    results = dict(img=image, img_shape=image.shape[:2],
                   ori_shape=image.shape[:2])
    if scale is not None:
        results = Resize(scale)(results)
    packed = PackInputs()(results)
    return model.data_preprocessor(dict(inputs=[packed['inputs']]))[
        'inputs'][0]


def test_camera_frame_equals_the_val_pipeline():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (37, 61, 3), dtype=np.uint8)
    model = _Model(mean=[123.675, 116.28, 103.53], std=[58.4, 57.1, 57.4])
    pipeline = [dict(type='LoadImage'), dict(type='Resize', scale=(32, 24)),
                dict(type='PackInputs')]
    cfg = PretrainedCfg.from_model(model, pipeline,
                                   class_names=['car', 'pedestrian'])
    assert cfg.input_size == (3, 24, 32) and cfg.resize == 'stretch'
    assert cfg.class_names == ['car', 'pedestrian']
    expected = _val_pipeline_tensor(model, frame, (32, 24))
    torch.testing.assert_close(cfg.preprocess(frame), expected,
                               rtol=0, atol=0)


def test_ct_slice_equals_the_val_pipeline():
    rng = np.random.default_rng(4)
    hu = rng.uniform(-1100, 1500, (40, 40)).astype(np.float32)
    model = _Model(mean=[0.5, 0.5], std=[0.25, 0.25],
                   windows=[(-600, 1500), (40, 400)])
    cfg = PretrainedCfg.from_model(model, [dict(type='Resize',
                                                scale=(32, 32))])
    assert cfg.in_chans == 2
    expected = _val_pipeline_tensor(model, hu[..., None], (32, 32))
    torch.testing.assert_close(cfg.preprocess(hu), expected, rtol=0, atol=0)


def test_ct_slab_equals_the_val_pipeline_and_names_its_channels():
    rng = np.random.default_rng(5)
    slab = rng.uniform(-1000, 400, (3, 20, 24)).astype(np.float32)
    windows = [(-600, 1500), (40, 400)]
    model = _Model(mean=[0.4] * 6, std=[0.3] * 6, windows=windows)
    cfg = PretrainedCfg.from_model(model, (), slice_offsets=[-1, 0, 1])
    assert cfg.input_size is None and cfg.in_chans == 6
    assert cfg.channel_names()[:3] == ['slice-1/C-600W1500', 'slice-1/C40W400',
                                       'slice+0/C-600W1500']
    expected = _val_pipeline_tensor(model, slab.transpose(1, 2, 0), None)
    got = cfg.preprocess(slab)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # channel order: slice-major, every slice through every window
    from perception.data import apply_window
    torch.testing.assert_close(
        got[3], (torch.from_numpy(apply_window(slab[1], 40, 400)) - 0.4) / 0.3)


def test_round_trip_through_json_and_version_check():
    cfg = PretrainedCfg(architecture='convnext_atto', input_size=(1, 64, 64),
                        mean=[0.5], std=[0.2], windows=[(-600, 1500)],
                        slice_offsets=[0], class_names=['nodule'],
                        extra=dict(pretraining='FCMAE'))
    again = PretrainedCfg.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    newer = dict(cfg.to_dict(), format_version=99)
    with pytest.raises(ValueError, match='upgrade perception'):
        PretrainedCfg.from_dict(newer)
    with pytest.raises(ValueError, match='same length'):
        PretrainedCfg(mean=[1, 2], std=[1])


def test_to_timm_uses_timms_scale():
    image = PretrainedCfg(architecture='vit_tiny_patch16_224',
                          input_size=(3, 224, 224), mean=[127.5] * 3,
                          std=[51.0] * 3, class_names=['a', 'b'],
                          num_classes=2)
    timm_cfg = image.to_timm()
    assert timm_cfg['mean'] == [0.5] * 3 and timm_cfg['std'] == [0.2] * 3
    assert timm_cfg['input_size'] == [3, 224, 224]
    assert timm_cfg['label_names'] == ['a', 'b']
    ct = PretrainedCfg(mean=[0.5], std=[0.25], windows=[(-600, 1500)])
    assert ct.to_timm()['mean'] == [0.5]  # windowed CT is already [0, 1]
    import timm.models
    timm.models.PretrainedCfg(**{k: v for k, v in timm_cfg.items()})


def test_keep_ratio_resize_and_padding_equal_the_val_pipeline():
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)
    model = _Model(mean=[120.0] * 3, std=[60.0] * 3, pad_size_divisor=32)
    cfg = PretrainedCfg.from_model(model, [dict(
        type='Resize', scale=(64, 64), keep_ratio=True)])
    assert cfg.resize == 'fit' and cfg.pad_size_divisor == 32
    results = Resize((64, 64), keep_ratio=True)(dict(
        img=frame, img_shape=frame.shape[:2], ori_shape=frame.shape[:2]))
    assert results['img'].shape[:2] == (36, 64)  # aspect kept
    packed = PackInputs()(results)
    out = model.data_preprocessor(dict(inputs=[packed['inputs']],
                                       data_samples=[packed['data_samples']]))
    assert out['inputs'].shape[-2:] == (64, 64)  # padded to 32s
    assert out['data_samples'][0].batch_input_shape == (64, 64)
    torch.testing.assert_close(cfg.preprocess(frame), out['inputs'][0],
                               rtol=0, atol=0)
    # mixed sizes batch together, padded at the bottom/right with zeros
    small = PackInputs()(dict(img=frame[:20, :30], img_shape=(20, 30),
                              ori_shape=(20, 30)))
    mixed = model.data_preprocessor(dict(inputs=[packed['inputs'],
                                                 small['inputs']]))
    assert mixed['inputs'].shape == (2, 3, 64, 64)
    assert mixed['inputs'][1, :, 20:, :].abs().sum() == 0


def test_input_size_is_found_inside_concat_and_wrapped_datasets():
    from perception.data.pretrained_cfg import config_pipeline
    resize = [dict(type='LoadImage'),
              dict(type='Resize', scale=(640, 360), keep_ratio=True)]
    drive = dict(type='KittiDataset', pipeline=resize)
    cfg = dict(
        val_dataloader=dict(dataset=dict(type='ConcatDataset',
                                         datasets=[drive, drive])),
        train_dataloader=dict(dataset=dict(
            type='MultiImageMixDataset',
            dataset=dict(type='ConcatDataset', datasets=[drive]),
            pipeline=[dict(type='Mosaic')])))
    assert config_pipeline(cfg, ('val_dataloader',)) == resize
    assert config_pipeline(cfg, ('test_dataloader', 'train_dataloader')) \
        == [dict(type='Mosaic')]
    assert config_pipeline(cfg, ('test_dataloader',)) == []
    model = torch.nn.Conv2d(3, 8, 3)
    model.data_preprocessor = PerceptionDataPreprocessor(
        mean=[0, 0, 0], std=[1, 1, 1])
    pretrained = PretrainedCfg.from_model(
        model, config_pipeline(cfg, ('val_dataloader',)))
    assert pretrained.input_size == (3, 360, 640)
    assert pretrained.resize == 'fit'
