"""The test-data kit shared by tests/ and benchmarks/ (not part of the app).

* :mod:`testkit.assets` - real photos, videos and models from pinned PyPI wheels, cached.
* :mod:`testkit.synth` - synthetic scenes of real face crops with exact ground truth
  (:mod:`testkit.faces`: the crops and backgrounds; :mod:`testkit.synth_check`: the detector on them).
* :mod:`testkit.labelled` - labelled expression images (FER2013 CSV, a folder per class).
* :mod:`testkit.server` - start ``python app.py`` on a free loopback port.
"""
