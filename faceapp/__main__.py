"""``python -m faceapp`` runs the command-line interface."""

from faceapp.cli.main import main

raise SystemExit(main())
