"""Prefect flows, deployments and the Dask runner: the only package that imports Prefect.

Call `coffeeshop.orchestration.settings.configure()` before importing any other module of it
(they import Prefect, which reads its settings when first imported)."""
