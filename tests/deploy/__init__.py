"""Tests of the image recipe, the Helm chart, the plain manifests and the install docs (issue 6)."""
