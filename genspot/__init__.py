"""genspot: detect AI-generated images on web pages and name the likely generator.

Components (one folder each in the repository, one subpackage each here):
``genspot.training`` builds the detector, ``genspot.export`` turns a checkpoint into a
bundle, ``genspot.backend`` serves a bundle. The core modules in this package
(``imaging``, ``text``, ``bundle``) are shared by all three, so preprocessing is defined
once and training and serving cannot drift apart.
"""

__version__ = "0.1.0"
