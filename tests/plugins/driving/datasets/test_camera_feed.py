"""CameraFeedDataset: frames from any source, stride, near-duplicate
skipping, the on-disk cache, results dicts for the pipeline."""
import os

import numpy as np
import pytest
from driving_fixtures import (
    camera_yaml,
    frame_code,
    stripes_are_rgb,
    write_image_folder,
    write_rig,
    write_video,
)

import perception_driving.datasets.camera_feed as camera_feed
from perception.data import BadSampleError
from perception.registry import DATASETS
from perception_driving.datasets import CameraFeedDataset

NUMBERS = [0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 5, 6]


@pytest.fixture
def repeating_video(tmp_path):
    return write_video(tmp_path / 'repeats.mp4', n=len(NUMBERS), fps=10,
                       numbers=NUMBERS)


def numbers_of(dataset):
    return [frame_code(dataset.get_data_info(i)['img'])
            for i in range(len(dataset))]


def test_results_dicts_for_the_pipeline(repeating_video, tmp_path):
    dataset = DATASETS.build(dict(
        type='CameraFeedDataset', source=str(repeating_video),
        cache_dir=str(tmp_path / 'cache'),
        pipeline=[dict(type='Resize', scale=(64, 48)),
                  dict(type='PackInputs')]))
    assert isinstance(dataset, CameraFeedDataset) and len(dataset) == 12
    info = dataset.get_data_info(4)
    assert info['img'].shape == (96, 128, 3) and info['img'].dtype == np.uint8
    assert stripes_are_rgb(info['img'])
    # a video's frames are named after the file
    assert info['camera'] == 'repeats' and info['timestamp_ns'] == 400_000_000
    assert info['frame_index'] == 4 and os.path.isfile(info['img_path'])
    assert info['img_path'].startswith(str(tmp_path / 'cache'))
    packed = dataset[4]
    assert tuple(packed['inputs'].shape) == (3, 48, 64)
    meta = packed['data_samples'].metainfo
    assert meta['camera'] == 'repeats' and meta['timestamp_ns'] == 400_000_000
    assert meta['ori_shape'] == (96, 128)


def test_stride_and_near_duplicate_skipping(repeating_video, tmp_path):
    dataset = CameraFeedDataset(str(repeating_video),
                                cache_dir=str(tmp_path / 'c'),
                                dedup_threshold=2.0)
    assert numbers_of(dataset) == [0, 1, 2, 3, 4, 5, 6]
    assert dataset.skipped_duplicates == 5
    strided = CameraFeedDataset(str(repeating_video),
                                cache_dir=str(tmp_path / 'c'), stride=3)
    assert numbers_of(strided) == NUMBERS[::3]
    assert [strided.get_data_info(i)['frame_index']
            for i in range(len(strided))] == [0, 3, 6, 9]


def test_cache_is_reused_without_decoding(repeating_video, tmp_path,
                                          monkeypatch):
    cache = str(tmp_path / 'cache')
    first = CameraFeedDataset(str(repeating_video), cache_dir=cache,
                              max_frames=5)
    assert len(first) == 5

    def no_decoding(*args, **kwargs):
        raise AssertionError('the cache should have been used')

    monkeypatch.setattr(camera_feed, 'open_source', no_decoding)
    again = CameraFeedDataset(str(repeating_video), cache_dir=cache,
                              max_frames=5)
    assert numbers_of(again) == numbers_of(first)
    # Another option is another cache entry, so it must decode.
    with pytest.raises(AssertionError, match='cache should'):
        CameraFeedDataset(str(repeating_video), cache_dir=cache, stride=2)


def test_rig_and_image_folder_sources(tmp_path):
    write_video(tmp_path / 'front.mp4', n=4, fps=10)
    write_image_folder(tmp_path / 'left', n=4, size=(64, 48),
                       times_ns=[i * 100_000_000 + 1_000_000
                                 for i in range(4)])
    write_rig(tmp_path / 'car.rig.yaml', {
        'front': camera_yaml('front.mp4', 128, 96),
        'left': camera_yaml('left', 64, 48)})
    dataset = CameraFeedDataset(sources=['car.rig.yaml', 'left'],
                                data_root=str(tmp_path),
                                cache_dir=str(tmp_path / 'cache'),
                                image_format='jpg')
    cameras = [dataset.get_data_info(i)['camera']
               for i in range(len(dataset))]
    # rig cameras keep the rig's names; an image folder is named after it
    assert cameras == ['front', 'left'] * 4 + ['left'] * 4
    assert numbers_of(dataset) == [0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3]


def test_live_stream_needs_max_frames(mjpeg_server, tmp_path):
    server = mjpeg_server(fps=40)
    with pytest.raises(ValueError, match='live stream; set max_frames'):
        CameraFeedDataset(server.url, cache_dir=str(tmp_path))
    dataset = CameraFeedDataset(server.url, cache_dir=str(tmp_path),
                                max_frames=4,
                                source_options={'buffering': 'fifo'})
    assert numbers_of(dataset) == [0, 1, 2, 3]


def test_damaged_cache_file_is_a_bad_sample(repeating_video, tmp_path):
    dataset = CameraFeedDataset(str(repeating_video),
                                cache_dir=str(tmp_path / 'c'), max_frames=3,
                                pipeline=[dict(type='PackInputs')])
    path = dataset.get_data_info(1)['img_path']
    with open(path, 'wb') as f:
        f.write(b'broken')
    with pytest.raises(BadSampleError, match='cached frame is missing or '
                       'unreadable; delete'):
        dataset[1]
    skipping = CameraFeedDataset(str(repeating_video),
                                 cache_dir=str(tmp_path / 'c'), max_frames=3,
                                 on_bad_sample='skip', max_bad_fraction=1.0,
                                 pipeline=[dict(type='PackInputs')])
    assert skipping[1]['inputs'].shape[0] == 3  # another sample instead
    assert len(skipping.bad_samples) >= 1


def test_driving_pretraining_config_builds_on_a_video(repeating_video,
                                                      tmp_path):
    from mmengine.config import Config
    root = os.path.dirname(os.path.abspath(__file__))
    config = os.path.join(root, '..', '..', '..', '..', 'configs', 'pretrain',
                          'mae_vit-tiny-p16_1xb32-400e_driving-256x512.py')
    cfg = Config.fromfile(config).train_dataloader.dataset
    cfg.update(source=[str(repeating_video)], cache_dir=str(tmp_path))
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 3  # 12 frames, the config's stride of 5
    item = dataset[0]
    assert tuple(item['inputs'].shape) == (3, 256, 512)
    assert item['data_samples'].metainfo['camera'] == 'repeats'


def test_without_cache_frames_stay_in_memory(repeating_video, tmp_path,
                                             monkeypatch):
    """cache=False: no files, no PNG/BGR round trip, the same samples."""
    cached = CameraFeedDataset(str(repeating_video),
                               cache_dir=str(tmp_path / 'c'), stride=2,
                               pipeline=[dict(type='PackInputs')])
    monkeypatch.setenv('PERCEPTION_CACHE', str(tmp_path / 'env'))

    def no_writing(*args, **kwargs):
        raise AssertionError('cache=False must not write frames')

    monkeypatch.setattr(camera_feed.CameraFeedDataset, '_write', no_writing)
    memory = CameraFeedDataset(str(repeating_video), cache=False, stride=2,
                               pipeline=[dict(type='PackInputs')])
    assert not (tmp_path / 'env').exists()
    assert len(memory) == len(cached) == 6
    assert numbers_of(memory) == numbers_of(cached) == NUMBERS[::2]
    info = memory.get_data_info(1)
    assert info['camera'] == 'repeats' and info['frame_index'] == 2
    assert stripes_are_rgb(info['img']) and info['img'].dtype == np.uint8
    # PNG is lossless: the cached frame is the source frame, pixel for pixel
    np.testing.assert_array_equal(info['img'],
                                  cached.get_data_info(1)['img'])
    info['img'][:] = 0  # a transform writing into img changes no other item
    assert stripes_are_rgb(memory.get_data_info(1)['img'])
    assert memory[1]['data_samples'].metainfo['timestamp_ns'] == 200_000_000
    with pytest.raises(ValueError, match='cache=False keeps frames in memory'):
        CameraFeedDataset(str(repeating_video), cache=False,
                          cache_dir=str(tmp_path))


def test_default_cache_follows_perception_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('PERCEPTION_CACHE', str(tmp_path))
    assert camera_feed.default_cache_dir() == str(tmp_path / 'frames')
    monkeypatch.setenv('PERCEPTION_CACHE', '')
    assert camera_feed.default_cache_dir() == os.path.join(
        os.path.expanduser('~'), '.cache', 'perception', 'frames')
