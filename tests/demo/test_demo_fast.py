"""`perception demo all --fast` end to end (the tiny variant): every
artifact the report links exists and is non-trivial (pictures decode and
are not blank, the annotated MP4 has the drive's frame count, the SR is a
DICOM SR), every link of report.md / report.html resolves, and the figures
of the report are the ones the run printed and wrote to figures.json."""
from __future__ import annotations

import contextlib
import html.parser
import io
import json
import re

import numpy as np
import pytest

pytest.importorskip('perception_driving', reason='the driving demo part '
                    'comes with the driving plugin')
pytest.importorskip('perception_medical', reason='the medical demo part '
                    'comes with the medical plugin')
pytest.importorskip('onnxruntime', reason='the demo exports to ONNX Runtime')
cv2 = pytest.importorskip('cv2')

from perception.cli import main  # noqa: E402
from perception_driving.demo import BUDGETS  # noqa: E402


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp('demo') / 'work'
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(['demo', 'all', '--fast', '--work-dir', str(work)])
    printed = out.getvalue()
    assert status == 0, printed[-2000:]
    return work, printed, json.loads((work / 'figures.json').read_text())


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline_images = 0

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ('href', 'src') and value:
                if value.startswith('data:image/'):
                    self.inline_images += 1
                else:
                    self.links.append(value)


def _artifacts(record: dict) -> list[dict]:
    return [a for part in record['parts'] for a in part['artifacts']]


def test_every_artifact_exists_and_is_not_trivial(demo):
    work, _, record = demo
    arts = _artifacts(record)
    kinds = {a['kind'] for a in arts}
    assert {'image', 'video', 'json', 'model', 'dicom', 'config'} <= kinds
    for art in arts:
        path = work / art['path']
        assert path.is_file() and path.stat().st_size > 0, art
        if art['kind'] == 'image':
            image = cv2.imread(str(path))
            assert image is not None, f'{path} does not decode'
            assert image.shape[0] >= 32 and float(image.std()) > 2.0, \
                f'{path} is blank'
        elif art['kind'] == 'json':
            json.loads(path.read_text())
    # the annotated MP4 holds every frame of the held-out drive
    (video, ) = [a for a in arts if a['kind'] == 'video']
    capture = cv2.VideoCapture(str(work / video['path']))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == BUDGETS['fast']['test_frames']
    assert float(np.std(frames[0])) > 2.0
    figures = record['figures']
    assert figures['driving']['mp4_frames']['value'] == len(frames)
    # the DICOM SR of the candidates references the series it describes
    import pydicom
    (sr, ) = [a for a in arts if a['kind'] == 'dicom']
    dataset = pydicom.dcmread(work / sr['path'])
    assert dataset.Modality == 'SR'
    # the exported bundles passed their verification gates
    for part in ('driving', 'medical'):
        assert figures[part]['parity_passed']['value'] is True
        assert figures[part]['oplint_errors']['value'] == 0


def test_every_link_of_the_reports_resolves(demo):
    work, _, record = demo
    md = (work / 'report.md').read_text()
    links = re.findall(r'\]\(([^)\s]+)\)', md)
    assert len(links) >= len(_artifacts(record))
    for link in links:
        assert (work / link).is_file(), f'report.md links {link}'
    parser = _Links()
    parser.feed((work / 'report.html').read_text())
    assert parser.links and parser.inline_images == sum(
        a['kind'] == 'image' for a in _artifacts(record))
    for link in parser.links:
        assert (work / link).is_file(), f'report.html links {link}'


def test_the_report_shows_the_figures_the_run_printed(demo):
    work, printed, record = demo
    md = (work / 'report.md').read_text()
    page = (work / 'report.html').read_text()
    import html as html_lib
    count = 0
    for part in record['parts']:
        for fig in part['figures']:
            text = record['figures'][part['name']][fig['key']]['text']
            assert f"  {fig['label']}: {text}\n" in printed, fig
            assert f"| {fig['label']} | {text} |" in md, fig
            assert (f'<td>{html_lib.escape(fig["label"])}</td><td class="v">'
                    f'{html_lib.escape(text)}</td>') in page, fig
            count += 1
    assert count >= 20
    # honest about pretraining: the verdict follows the run's own numbers
    figures = record['figures']
    from perception_driving.demo import VERDICT_MARGIN as AP_MARGIN
    from perception_medical.demo import VERDICT_MARGIN as CPM_MARGIN
    for part, key, margin in (('driving', 'ap', AP_MARGIN),
                              ('medical', 'cpm', CPM_MARGIN)):
        gain = figures[part][f'{key}_pretrained']['value'] - \
            figures[part][f'{key}_scratch']['value']
        paragraphs = ' '.join(' '.join(q['paragraphs'])
                              for q in record['parts'] if q['name'] == part)
        assert ('does NOT beat scratch' in paragraphs) is (gain <= margin)
        assert ('pretraining is ahead' in paragraphs) is (gain > margin)
    assert 'subgroup report' in md and 'manufacturer' in md


def test_an_unknown_part_is_one_line(capsys):
    assert main(['demo', 'nonsense', '--fast']) == 2
    err = capsys.readouterr().err
    assert err.startswith('perception demo: error: ')
    assert 'driving' in err and 'medical' in err and 'Traceback' not in err


def _chromium() -> str | None:
    import shutil
    for name in ('chromium-headless-shell', 'chromium', 'chromium-browser',
                 'google-chrome', 'headless_shell'):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_the_report_opens_in_headless_chromium(demo, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip('no Chromium on PATH (make test-deps installs '
                    'chromium-headless-shell)')
    import subprocess
    work = demo[0]
    shot = tmp_path / 'report.png'
    args = [browser, '--headless', '--no-sandbox', '--disable-gpu',
            '--enable-logging=stderr', '--v=0', '--window-size=1200,2400',
            '--allow-file-access-from-files']
    run = subprocess.run(args + [f'--screenshot={shot}',
                                 (work / 'report.html').as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'Uncaught' not in run.stderr and 'CONSOLE' not in run.stderr
    image = cv2.imread(str(shot))
    assert image is not None and float(image.std()) > 5.0  # not a blank page
    dom = subprocess.run(args + ['--dump-dom', (work / 'report.html').as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and '<h1>perception demo report</h1>' in dom.stdout
    assert dom.stdout.count('<img') == sum(
        a['kind'] == 'image' for a in _artifacts(demo[2]))


def test_the_pretraining_verdict_needs_a_lead_above_one_seeds_margin():
    from perception.demo.context import pretraining_verdict
    ahead = pretraining_verdict(0.30, 0.20, 'AP', 0.05, 'why')
    assert ahead.startswith('pretraining is ahead by 0.1000 AP')
    inside = pretraining_verdict(0.0296, 0.0247, 'AP', 0.01, 'too short')
    assert 'does NOT beat scratch' in inside and '+0.0049 AP' in inside
    assert 'inside the 0.01' in inside and 'too short' in inside
    behind = pretraining_verdict(0.1, 0.3, 'CPM', 0.05, 'too short')
    assert 'does NOT beat scratch' in behind and '-0.2000 CPM' in behind
