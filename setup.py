"""Map the top-level component folders onto one `genspot` namespace.

The repository keeps `training/`, `export/` and `backend/` at the top level (one folder per
component), while the installed package is `genspot.training`, `genspot.export`,
`genspot.backend`, so no generic top-level names leak into site-packages.
"""

from setuptools import find_packages, setup

COMPONENTS = ("training", "export", "backend")

packages = find_packages(include=["genspot", "genspot.*"])
package_dir = {"genspot": "genspot"}
for component in COMPONENTS:
    package_dir[f"genspot.{component}"] = component
    packages += [f"genspot.{name}" for name in find_packages(include=[component, f"{component}.*"])]

setup(packages=packages, package_dir=package_dir)
