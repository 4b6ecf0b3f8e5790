"""The evaluation report's maps use the CWSC colour scale of the QGIS layers (0-800 mm)."""

import numpy as np

from cwsc.reports.evaluation import CWSC_SCALE_MM, maps_figure


def _colour_tops(fig):
    return [im.get_clim()[1] for ax in fig.axes for im in ax.get_images()]


def test_the_maps_are_on_the_cwsc_scale_unless_they_exceed_it():
    rng = np.random.default_rng(1)
    cwsc = rng.uniform(15, 500, (6, 8))
    reference = rng.uniform(15, 480, (6, 8))
    tops = _colour_tops(maps_figure(cwsc, reference))
    assert tops[:2] == [CWSC_SCALE_MM, CWSC_SCALE_MM] == [800.0, 800.0]
    tops = _colour_tops(maps_figure(cwsc * 3, reference))
    assert tops[0] == tops[1] > 800.0
