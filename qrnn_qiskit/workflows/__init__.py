"""The workflows, one per ``qrnn`` command and with its parameter names: :mod:`.build`
(``build``), :mod:`.train` (``train``, ``resume``), :mod:`.sweep` (``sweep``), :mod:`.evaluate`
(``evaluate``) and :mod:`.hardware` (IBM backends with the cost gate). They compose the layers
below; the command line only parses and calls them. The package root exports the functions
(``from qrnn_qiskit import train``); the modules keep their names here."""
