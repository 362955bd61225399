"""The optional compiled CAD OSE core (everything else is declared in pyproject.toml).

``optional=True``: without a C compiler the install still succeeds and the detector runs its
pure-Python port (console/analytics/detectors/context_ose.py), with the same scores.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "console.analytics.detectors._cad_ose",
            ["console/analytics/detectors/_cad_ose.c"],
            optional=True,
        )
    ]
)
