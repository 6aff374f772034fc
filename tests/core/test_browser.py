"""perception browse: pictures of pipeline output with boxes placed where
the pipeline says, ignore regions shaded, CT windowed into panels."""
import os
import textwrap

import numpy as np
import pytest
from PIL import Image

from perception.cli import all_commands
from perception.data.windowing import apply_window
from perception.visualization import IGNORE_COLOUR, PALETTE, browse

pytest.importorskip('perception_driving', reason='KITTI reader lives in the '
                    'driving plugin')


def _kitti(root):
    """Two 200x100 KITTI frames: a car (filled) and a DontCare region."""
    for sub in ('image_2', 'label_2'):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        img = np.full((100, 200, 3), 40, np.uint8)
        img[20:60, 10:50] = (200, 60, 60)  # car pixels 10..49 x 20..59
        Image.fromarray(img).save(root / 'image_2' / f'{i:06d}.png')
        (root / 'label_2' / f'{i:06d}.txt').write_text(
            'Car 0.00 0 0 10.00 20.00 49.00 59.00 1 1 1 1 1 1 0\n'
            'DontCare -1 -1 -10 120.00 30.00 179.00 89.00 -1 -1 -1 -1000 '
            '-1000 -1000 -10\n')


def _config(tmp_path, body):
    path = tmp_path / 'cfg.py'
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_kitti_pictures_place_boxes_and_shade_ignore(tmp_path):
    _kitti(tmp_path / 'kitti')
    cfg = _config(tmp_path, f"""
        train_dataloader = dict(dataset=dict(
            type='KittiDataset', data_root={str(tmp_path / 'kitti')!r},
            calib_dir=None, serialize_data=False,
            pipeline=[dict(type='LoadImage'),
                      dict(type='Albumentations',
                           transforms=[dict(type='HorizontalFlip', p=1)]),
                      dict(type='PackInputs')]))
        """)
    out = tmp_path / 'pictures'
    code = all_commands()['browse'].main([cfg, '--n', '5', '--out',
                                          str(out)])
    assert code == 0
    files = sorted(os.listdir(out))
    assert files == ['train_000_000000.png', 'train_001_000001.png']
    pic = np.asarray(Image.open(out / files[0]).convert('RGB')).astype(int)
    assert pic.shape == (100 + 18, 200, 3)  # image + caption strip
    car = PALETTE[2]  # label of 'car' in the driving taxonomy
    # flipped car: pixel edges [150, 190) x [20, 60); 2-px outline inside
    assert tuple(pic[40, 150]) == car and tuple(pic[40, 189]) == car
    assert tuple(pic[20, 170]) == car and tuple(pic[59, 170]) == car
    assert tuple(pic[40, 148]) == (40, 40, 40)  # just outside: untouched
    assert tuple(pic[40, 170]) == (200, 60, 60)  # inside: the image
    # DontCare [120, 180) flipped to [20, 80): grey outline, shaded inside
    assert tuple(pic[50, 20]) == IGNORE_COLOUR
    inside = pic[45:85, 25:75].reshape(-1, 3)
    assert (inside != 40).any(axis=1).all()  # every pixel shaded
    assert tuple(pic[95, 50]) == (40, 40, 40)  # below it: untouched


def test_windowed_ct_panels(tmp_path):
    folder = tmp_path / 'ct'
    folder.mkdir()
    values = np.tile(np.linspace(0, 2000, 64).astype(np.uint16), (32, 1))
    Image.fromarray(values).save(folder / 'slice.png')
    windows = [(1040, 400), (1000, 2000)]
    cfg = _config(tmp_path, f"""
        model = dict(data_preprocessor=dict(windows={windows!r}))
        train_dataloader = dict(dataset=dict(
            type='ImageFolderDataset', data_root={str(folder)!r},
            pipeline=[dict(type='LoadImage', color_type='unchanged'),
                      dict(type='PackInputs')]))
        """)
    paths = browse(cfg, n=1, out=str(tmp_path / 'out'))
    pic = np.asarray(Image.open(paths[0]).convert('L')).astype(int)
    assert pic.shape == (32 + 18, 2 * 64)  # one panel per window
    for p, (c, w) in enumerate(windows):
        expected = np.round(apply_window(
            values[20:21, 40:41].astype(np.float32), c, w)[0, 0] * 255)
        assert pic[20, p * 64 + 40] == pytest.approx(expected, abs=1)


def test_unknown_split_lists_the_splits(tmp_path):
    cfg = _config(tmp_path, "train_dataloader = dict(dataset=dict())\n")
    with pytest.raises(ValueError, match='no val_dataloader.dataset; splits '
                       'in this config: train'):
        browse(cfg, split='val')


def test_picture_names_follow_the_privacy_guard(tmp_path):
    """A private data_root: pictures are not named after the source files;
    without a guard they are."""
    root = tmp_path / 'PHI_DOE_JOHN'
    (root / 'circle').mkdir(parents=True)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(
        root / 'circle' / 'DOE_JOHN_1961.png')
    body = (f"train_dataloader = dict(dataset=dict(type='ImageFolderDataset', "
            f"data_root={str(root)!r}, pipeline=[dict(type='LoadImage'), "
            "dict(type='PackInputs')]))\n")
    plain = browse(_config(tmp_path, body), n=1, out=str(tmp_path / 'a'))
    assert [os.path.basename(p) for p in plain] == ['train_000_DOE_JOHN_1961.png']
    guard = "privacy = dict(redact_keys=('data_root', ))\n"
    guarded = browse(_config(tmp_path, body + guard), n=1,
                     out=str(tmp_path / 'b'))
    (name, ) = [os.path.basename(p) for p in guarded]
    assert name.startswith('train_000_sample-') and 'DOE' not in name


def test_browse_command_reports_bad_data_in_one_line(tmp_path, capsys):
    """A config whose data is missing is an error message, not a traceback;
    --cfg-options uses the same syntax as `perception train`."""
    from perception.cli import main
    config = tmp_path / 'cfg.py'
    config.write_text(
        "train_dataloader = dict(dataset=dict(type='ImageFolderDataset', "
        "data_root='nowhere', pipeline=[]))\n")
    status = main(['browse', str(config), '--out', str(tmp_path / 'out'),
                   '--cfg-options',
                   f"train_dataloader.dataset.data_root={tmp_path / 'gone'}"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('perception browse: error: ')
    assert str(tmp_path / 'gone') in err and 'Traceback' not in err
