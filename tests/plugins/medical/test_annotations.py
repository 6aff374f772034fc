"""Annotation tables: errors name the file, the line and the field."""
import pytest

from perception_medical.annotations import read_annotations


def test_bad_csv_named_with_line(tmp_path):
    bad = tmp_path / 'a.csv'
    bad.write_text('seriesuid,coordX,coordY,coordZ\n1.2,0,0,0\n')
    with pytest.raises(ValueError, match=r'a.csv: line 1: missing .*'
                       'diameter_mm'):
        read_annotations(str(bad))
    bad.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                   '1.2,0,0,0,5\n1.2,0,zero,0,5\n')
    with pytest.raises(ValueError, match="line 3: coordY='zero'"):
        read_annotations(str(bad))
