"""The demo's report: ``report.md`` (relative links), ``report.html``
(static, pictures inline as base64, other files as relative links) and
``figures.json`` (every figure of the run, as the summary printed them)."""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Sequence

from perception.demo.context import Artifact, PartResult

__all__ = ['write_report', 'summary_lines', 'FIGURES_FILE']

FIGURES_FILE = 'figures.json'
_MIME = {'.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg'}


def summary_lines(parts: Sequence[PartResult], work_dir: str) -> list[str]:
    """The closing summary: each part's figures, then where the report is."""
    lines = []
    for part in parts:
        lines.append(f'{part.title} ({part.seconds:.0f} s)')
        for fig in part.figures:
            lines.append(f'  {fig.label}: {fig.text()}')
    lines.append(f'report: {os.path.join(work_dir, "report.html")} '
                 f'(and report.md)')
    return lines


def _figures_json(parts: Sequence[PartResult]) -> dict:
    return {p.name: {f.key: dict(value=f.value, text=f.text(), label=f.label)
                     for f in p.figures} for p in parts}


def _md_link(art: Artifact) -> str:
    if art.kind == 'image':
        return f'![{art.caption}]({art.path})\n\n*{art.caption}* ([{art.path}]({art.path}))'
    return f'- [{art.path}]({art.path}): {art.caption}'


def _markdown(parts: Sequence[PartResult], meta: dict) -> str:
    out = ['# perception demo report', '',
           f"Run {meta['created']} on {meta['machine']}, "
           f"{'fast (tiny) variant' if meta['fast'] else 'full variant'}, "
           f"{meta['seconds']:.0f} s in all. Every figure below was measured "
           f'in this run ([{FIGURES_FILE}]({FIGURES_FILE})).', '']
    for part in parts:
        out += [f'## {part.title}', '', '| figure | value |', '|---|---|']
        out += [f'| {f.label} | {f.text()} |' for f in part.figures]
        out.append('')
        out += [p + '\n' for p in part.paragraphs]
        out += ['```text\n' + b + '\n```\n' for b in part.blocks]
        pictures = [a for a in part.artifacts if a.kind == 'image']
        files = [a for a in part.artifacts if a.kind != 'image']
        out += [_md_link(a) + '\n' for a in pictures]
        if files:
            out += ['### Files', ''] + [_md_link(a) for a in files] + ['']
        out += ['### Steps', '', '| step | seconds |', '|---|---|']
        out += [f"| {s['step']} | {s['seconds']} |" for s in part.steps]
        out.append('')
    return '\n'.join(out)


def _img_tag(root: Path, art: Artifact) -> str:
    data = (root / art.path).read_bytes()
    mime = _MIME.get(os.path.splitext(art.path)[1].lower(), 'image/png')
    src = f'data:{mime};base64,' + base64.b64encode(data).decode('ascii')
    cap = html.escape(art.caption)
    return (f'<figure><img src="{src}" alt="{cap}"><figcaption>{cap} '
            f'(<a href="{html.escape(art.path)}">{html.escape(art.path)}</a>)'
            '</figcaption></figure>')


def _html(root: Path, parts: Sequence[PartResult], meta: dict) -> str:
    e = html.escape
    body = [f'<h1>perception demo report</h1><p>Run {e(meta["created"])} on '
            f'{e(meta["machine"])}, '
            f'{"fast (tiny) variant" if meta["fast"] else "full variant"}, '
            f'{meta["seconds"]:.0f} s in all. Every figure below was measured '
            f'in this run (<a href="{FIGURES_FILE}">{FIGURES_FILE}</a>).</p>']
    for part in parts:
        body.append(f'<h2>{e(part.title)}</h2><table><tr><th>figure</th>'
                    '<th>value</th></tr>')
        body += [f'<tr><td>{e(f.label)}</td><td class="v">{e(f.text())}</td></tr>'
                 for f in part.figures]
        body.append('</table>')
        body += [f'<p>{e(p)}</p>' for p in part.paragraphs]
        body += [f'<pre>{e(b)}</pre>' for b in part.blocks]
        for art in part.artifacts:
            if art.kind == 'image':
                body.append(_img_tag(root, art))
        files = [a for a in part.artifacts if a.kind != 'image']
        if files:
            body.append('<h3>Files</h3><ul>')
            for art in files:
                link = f'<a href="{e(art.path)}">{e(art.path)}</a>'
                body.append(f'<li>{link}: {e(art.caption)}</li>')
            body.append('</ul>')
    style = ('body{font-family:sans-serif;max-width:1100px;margin:2em auto;'
             'padding:0 1em}img{max-width:100%;border:1px solid #ccc}'
             'table{border-collapse:collapse}td,th{border:1px solid #ccc;'
             'padding:2px 8px}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}'
             'td.v{text-align:right;font-family:monospace}')
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<title>perception demo report</title>'
            f'<style>{style}</style></head><body>' + '\n'.join(body)
            + '</body></html>\n')


def write_report(work_dir: str | os.PathLike, parts: Sequence[PartResult],
                 meta: dict) -> dict:
    """Write report.md, report.html and figures.json into ``work_dir``;
    returns their paths."""
    root = Path(work_dir)
    paths = dict(md=root / 'report.md', html=root / 'report.html',
                 figures=root / FIGURES_FILE)
    paths['md'].write_text(_markdown(parts, meta), encoding='utf-8')
    paths['html'].write_text(_html(root, parts, meta), encoding='utf-8')
    record = dict(meta=meta, figures=_figures_json(parts),
                  parts=[p.to_dict() for p in parts])
    paths['figures'].write_text(json.dumps(record, indent=1), encoding='utf-8')
    return {k: str(v) for k, v in paths.items()}
