#!/bin/sh
# kustomize runs this with the ResourceList on stdin; cfgsync must be on PATH.
exec cfgsync krm
